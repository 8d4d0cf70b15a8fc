"""The composition root: real adapters from settings."""
from __future__ import annotations

from typing import Callable

from custody.config import Settings
from models.clock import Clock, SystemClock
from models.db import make_engine, migrate
from models.handlers import Core
from models.policy import load_policy


def build_core(settings: Settings, clock: Clock | None = None,
               on_commit: Callable[[str, str], None] | None = None) -> Core:
    """Refuses to start on a bad policy or an unknown schema (both raise with the
    field or the revision named); migrates an older database forward."""
    policy = load_policy(settings.policy_path)
    engine = make_engine(settings.database_url, lock_timeout=settings.db_lock_timeout)
    migrate(engine)
    return Core(engine=engine, policy=policy, clock=clock or SystemClock(), on_commit=on_commit)
