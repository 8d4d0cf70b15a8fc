"""The composition root: real adapters from settings."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from typing import Callable, Iterator

from custody.config import Settings
from custody.service.core import Core
from custody.store.db import make_engine, migrate
from models.clock import Clock, SystemClock
from models.policy import load_policy


def build_core(settings: Settings, clock: Clock | None = None,
               on_commit: Callable[[str, str], None] | None = None) -> Core:
    """Refuses to start on a bad policy or an unknown schema (both raise with the
    field or the revision named); migrates an older database forward."""
    policy = load_policy(settings.policy_path)
    engine = make_engine(settings.database_url)
    migrate(engine)
    return Core(engine=engine, policy=policy, clock=clock or SystemClock(), on_commit=on_commit)


@contextmanager
def core_for_run() -> Iterator[Core]:
    """The core of one Prefect run, from the environment `custody up` gives its
    children: built when the run starts, handed to each of its tasks, and its
    connections closed when the run ends (or suspends)."""
    core = build_core(Settings.from_env())
    try:
        yield core
    finally:
        core.engine.dispose()


def intake_core(core: Core, settings: Settings) -> Core:
    """The core that events come in through: the same database, policy, clock
    and commit hook, on an engine of its own when CUSTODY_INTAKE_LOCK_TIMEOUT
    bounds how long an event waits for another writer's lock. The backstop
    keeps the patient engine: a release order never gives up on a lock."""
    if settings.intake_lock_timeout is None:
        return core
    return replace(core, engine=make_engine(settings.database_url, lock_timeout=settings.intake_lock_timeout))
