"""Prefect tasks that publish what operators see in the Prefect UI: the custody
board and a case's timeline (their content: custody/adapters/prefect/artifacts.py)."""
from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run

from custody.adapters.prefect.artifacts import (
    BOARD_KEY,
    BOARD_ROWS,
    board_description,
    board_rows,
    keep_only_latest_timeline,
    timeline_for,
    timeline_key,
)
from custody.service.core import Core
from custody.service.views import open_cases


@task(name="publish-custody-board", cache_policy=NO_CACHE)
def publish_board(core: Core) -> int:
    with core.uow(read_only=True) as uow:
        views = open_cases(uow, core.policy, core.clock.now(), limit=BOARD_ROWS, orders_first=True)
        counts = uow.cases.open_counts()
    create_table_artifact(key=BOARD_KEY, table=board_rows(views, core.policy) or [{"case": "no open cases"}],
                          description=board_description(views, counts, core.clock.now().isoformat(), core.policy))
    return sum(counts.values())


@task(name="publish-case-timeline", cache_policy=NO_CACHE)
def publish_timeline(core: Core, case_id: str) -> None:
    create_markdown_artifact(key=timeline_key(case_id), markdown=timeline_for(core, case_id),
                             description=f"Timeline of case {case_id}")
    with get_client(sync_client=True) as client:
        keep_only_latest_timeline(client, case_id, str(flow_run.get_id()))
