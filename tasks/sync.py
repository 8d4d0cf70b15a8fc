"""The Prefect task that brings a case's run in line with the database
(custody/adapters/prefect/sync.py)."""
from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from custody.adapters.prefect.sync import sync_case
from custody.service.core import Core


@task(name="sync-case-run", cache_policy=NO_CACHE)
def sync_case_task(core: Core, case_id: str) -> str:
    return sync_case(core, case_id)
