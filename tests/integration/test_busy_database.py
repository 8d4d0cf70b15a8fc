"""POST /events while another writer holds the database's lock past intake's
lock wait: a 503 with Retry-After and a JSON reason, nothing stored, and the
same request accepted once the lock is gone (it used to be a 500)."""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from custody.service.core import Core
from custody.store.db import make_engine
from tests.builders import detainer_event, release_event
from tests.integration.endpoint import NAMES_A_FIELD, TOKENS, serving, write_senders
from tests.integration.helpers import snapshot

pytestmark = pytest.mark.slow

HEADERS = {"Authorization": f"Bearer {TOKENS['everything']}"}
LOCK_WAIT = 0.3  # seconds intake waits for the other writer in this test (30 s by default on SQLite)


@contextmanager
def another_writer_holds_the_lock(url: str):
    """A second connection, from outside the endpoint, in the middle of a write."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        conn = sqlite3.connect(parsed.database, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("LOCK TABLE event_inbox, cases IN ACCESS EXCLUSIVE MODE"))
            try:
                yield
            finally:
                conn.rollback()
    finally:
        engine.dispose()


@pytest.fixture
def busy_endpoint(make_core, db_url, clock, tmp_path):
    make_core()  # migrated, with the roster
    engine = make_engine(db_url, lock_timeout=LOCK_WAIT)
    core = Core(engine, make_core().policy, clock)
    with serving(core, write_senders(tmp_path / "senders.toml")) as base:
        yield base, core
    engine.dispose()


@pytest.mark.parametrize("shape", ["one event", "a batch"])
def test_a_busy_database_is_a_503_with_retry_after_and_changes_nothing(busy_endpoint, db_url, clock, shape):
    base, core = busy_endpoint
    t = clock.now() - timedelta(hours=1)
    events = [detainer_event("busy-1", "BUSY-1", t, a_number="A300000001"), release_event("busy-2", "BUSY-1", t)]
    body = events[0] if shape == "one event" else events
    before = snapshot(core.engine)
    with another_writer_holds_the_lock(db_url):
        response = httpx.post(f"{base}/events", json=body, headers=HEADERS, timeout=30)
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    reason = response.json()["error"]
    assert NAMES_A_FIELD.match(reason) and reason.startswith("database: busy"), reason
    assert snapshot(core.engine) == before, "a request answered 503 changed the database"
    # The sender does what the answer says: the same request again, now accepted.
    again = httpx.post(f"{base}/events", json=body, headers=HEADERS, timeout=30)
    assert again.status_code == (201 if shape == "one event" else 200), again.text
    results = [again.json()] if shape == "one event" else again.json()["results"]
    assert {r["result"] for r in results} == {"accepted"}


def test_the_schema_documents_the_503(busy_endpoint):
    base, _ = busy_endpoint
    schema = httpx.get(f"{base}/openapi.json", headers=HEADERS, timeout=10).json()
    busy = schema["paths"]["/events"]["post"]["responses"]["503"]
    assert "Retry-After" in busy["headers"] and "error" in busy["content"]["application/json"]["schema"]["required"]


def test_the_lock_wait_is_configuration_for_every_custody_process(make_core, db_url, clock, tmp_path):
    """CUSTODY_INTAKE_LOCK_TIMEOUT reaches the engine of every process (here `custody
    ingest`): behind another writer's lock the line is refused as busy after
    the configured wait, with nothing stored, where unset PostgreSQL would wait
    as long as the lock is held (and SQLite 30 s, past this test's limit)."""
    import subprocess
    import sys

    from tests.integration.cli import ROOT, custody_env, jsonl

    core = make_core()
    env = custody_env(tmp_path, CUSTODY_DATABASE_URL=db_url, CUSTODY_PREFECT="off", CUSTODY_INTAKE_LOCK_TIMEOUT="0.5")
    line = jsonl(detainer_event("busy-cli-1", "BUSY-CLI-1", clock.now() - timedelta(hours=1), a_number="A300000002"))
    before = snapshot(core.engine)
    with another_writer_holds_the_lock(db_url):
        done = subprocess.run([sys.executable, "-m", "custody", "ingest", "-"], input=line, capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=25)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("line 1: rejected: database: ") and "run the file again" in done.stdout, done.stdout
    assert snapshot(core.engine) == before
    again = subprocess.run([sys.executable, "-m", "custody", "ingest", "-"], input=line, capture_output=True, text=True,
                           env=env, cwd=ROOT, timeout=60)
    assert again.returncode == 0 and "busy-cli-1: accepted" in again.stdout, again.stdout + again.stderr


def test_only_intake_gets_the_lock_wait(db_url, tmp_path):
    """The backstop's engine keeps waiting for a lock as long as it takes (a
    release order must not give up); events come in on an engine that gives up."""
    from custody.config import Settings
    from custody.wiring import build_core, intake_core

    env = {"CUSTODY_HOME": str(tmp_path), "CUSTODY_DATABASE_URL": db_url}
    core = build_core(Settings.from_env(env))
    assert intake_core(core, Settings.from_env(env)) is core
    intake = intake_core(core, Settings.from_env({**env, "CUSTODY_INTAKE_LOCK_TIMEOUT": "0.5"}))
    try:
        assert intake.engine is not core.engine and intake.policy is core.policy and intake.clock is core.clock
        on_sqlite = core.engine.dialect.name == "sqlite"
        for engine, waits in ((core.engine, 30_000 if on_sqlite else "0"), (intake.engine, 500 if on_sqlite else "500ms")):
            with engine.connect().execution_options(custody_read_only=True) as conn:
                assert conn.exec_driver_sql("PRAGMA busy_timeout" if on_sqlite else "SHOW lock_timeout").scalar() == waits
    finally:
        intake.engine.dispose()
        core.engine.dispose()
