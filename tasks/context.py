"""The core for code running inside Prefect runs, built once per process from
the same environment `custody up` gives its children."""
from __future__ import annotations

from functools import lru_cache

from custody.config import Settings
from custody.service.core import Core
from custody.wiring import build_core


@lru_cache(maxsize=1)
def core() -> Core:
    return build_core(Settings.from_env())
