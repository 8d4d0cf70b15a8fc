from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# `HYPOTHESIS_PROFILE=deep bash .ci/run` searches much harder than CI does.
settings.register_profile("ci", max_examples=80, deadline=None)  # a busy machine must not fail a test by its speed
settings.register_profile("deep", max_examples=1500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

from custody.service.core import Core
from custody.service.roster import load_roster
from custody.store.db import make_engine, migrate
from models.clock import FixedClock
from tests.builders import ROSTER_CSV, policy, utc
from tests.databases import database_url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(utc(2026, 3, 11, 12, 0))


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database when
    CUSTODY_TEST_DATABASE_URL is set (see tests/databases.py)."""
    return database_url(tmp_path)


@pytest.fixture
def make_core(db_url, clock):
    engines = []

    def build(pol=None, url: str | None = None, roster: str | None = ROSTER_CSV) -> Core:
        engine = make_engine(url or db_url)
        engines.append(engine)
        migrate(engine)
        core = Core(engine, pol or policy(), clock)
        if roster:
            saved = clock.now()
            clock.set(utc(2026, 1, 1))
            load_roster(core, roster, source="test", actor="test")
            clock.set(saved)
        return core

    yield build
    for engine in engines:
        engine.dispose()


@pytest.fixture
def core(make_core) -> Core:
    return make_core()
