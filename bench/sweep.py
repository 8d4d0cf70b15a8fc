"""The backstop pass (`custody sweep`) against many open cases.

Database time is measured inside SQLAlchemy: the time spent in the driver's
execute and commit calls (statements, BEGIN, COMMIT with its fsync), summed
over the pass; the rest of the pass is Python deciding and writing rows. The
same pass is also run as the real command (`custody sweep --json`, a new
process) on an identical copy of the database, for its wall time."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine.cursor import CursorFetchStrategy

from bench.common import ROOT, Workspace, Workspaces, measured, now, percentile, raise_priority
from bench.population import copy_cases, database_bytes, open_count, past_holds, table_bytes, waiting_cases
from custody.service.backstop import sweep
from custody.service.core import Core

HELD_SHARE = 0.1  # of the cases not due: held with a release order hours away; the rest wait for release


class DbTimer:
    """Time inside the driver, per statement kind, for one engine: execute,
    fetching the rows (SQLite steps through a query as its rows are fetched),
    commit and rollback."""

    def __init__(self, engine):
        self.engine = engine
        self.local = threading.local()
        self.local.kind = "?"
        self.reset()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        self._commit, self._rollback = engine.dialect.do_commit, engine.dialect.do_rollback
        engine.dialect.do_commit = self._timed(self._commit, "commit")
        engine.dialect.do_rollback = self._timed(self._rollback, "rollback")
        self._fetch = {name: getattr(CursorFetchStrategy, name) for name in ("fetchone", "fetchmany", "fetchall")}
        for name, original in self._fetch.items():
            setattr(CursorFetchStrategy, name, self._timed_fetch(original))

    def _timed_fetch(self, original):
        timer = self

        def fetch(strategy, result, dbapi_cursor, *args, **kwargs):
            started = time.perf_counter()
            try:
                return original(strategy, result, dbapi_cursor, *args, **kwargs)
            finally:
                if result.connection.engine is timer.engine:
                    kind = getattr(timer.local, "kind", "?")
                    timer.seconds[kind] = timer.seconds.get(kind, 0.0) + time.perf_counter() - started
        return fetch

    def reset(self) -> None:
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def _add(self, kind: str, seconds: float) -> None:
        self.seconds[kind] = self.seconds.get(kind, 0.0) + seconds
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self.local.started = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        self.local.kind = _kind(statement)
        self._add(self.local.kind, time.perf_counter() - self.local.started)

    def _timed(self, original, kind):
        def wrapped(dbapi_connection):
            started = time.perf_counter()
            try:
                return original(dbapi_connection)
            finally:
                self._add(kind, time.perf_counter() - started)
        return wrapped

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)
        self.engine.dialect.do_commit, self.engine.dialect.do_rollback = self._commit, self._rollback
        for name, original in self._fetch.items():
            setattr(CursorFetchStrategy, name, original)

    @property
    def total_ms(self) -> float:
        return sum(self.seconds.values()) * 1000

    def as_dict(self) -> dict[str, Any]:
        return {"db_ms": self.total_ms, "statements": sum(c for k, c in self.counts.items() if k not in ("commit", "rollback")),
                "commits": self.counts.get("commit", 0),
                "by_kind_ms": {k: v * 1000 for k, v in sorted(self.seconds.items())}, "by_kind_count": dict(sorted(self.counts.items()))}


def _kind(statement: str) -> str:
    s = " ".join(statement.split()).lower()
    if s.startswith("begin"):
        return "begin"
    if "min(cases.next_due_at)" in s or ("from cases" in s and "next_due_at" in s and "limit" in s and "case_id" not in s.split("from")[0]):
        return "next-due query"
    if s.startswith("select cases.case_id, cases.next_due_at"):
        return "due query"
    return s.split()[0] + " " + (s.split(" into ")[1].split()[0] if " into " in s else s.split(" from ")[1].split()[0] if " from " in s else
                                  s.split()[1] if len(s.split()) > 1 else "")


@contextmanager
def timed(engine):
    timer = DbTimer(engine)
    try:
        yield timer
    finally:
        timer.close()


def build(core: Core, *, open_total: int, due: int, have: dict[str, Any]) -> dict[str, Any]:
    """Grow the population to `open_total` open cases of which `due` are due
    now (held, release order in the past and not yet given). The due cases and
    one template of each other kind go through the intake; the other cases are
    copies of a template (see population.py). `have` says what is there."""
    have = dict(have) or {"due": 0, "held": 0, "waiting": 0}
    if due > have["due"]:
        start = now() - timedelta(minutes=30)
        past_holds(core, f"sdue{have['due']}", 101 + have["due"] // 1000, [start + timedelta(milliseconds=10 * i) for i in range(due - have["due"])])
        have["due"] = due
    others = open_total - have["due"]
    held = max(0, int(others * HELD_SHARE) - have["held"])
    waiting = max(0, others - int(others * HELD_SHARE) - have["waiting"])
    if held and "held_template" not in have:
        have["held_template"] = list(past_holds(core, "stmplh", 201, [now() + timedelta(hours=5)]))[0]
        have["held"], held = 1, held - 1
    if waiting and "waiting_template" not in have:
        have["waiting_template"] = waiting_cases(core, "stmplw", 202, 1)[0]
        have["waiting"], waiting = 1, waiting - 1
    if held:
        copy_cases(core, have["held_template"], held, "sh", 203, start=have["held"])
        have["held"] += held
    if waiting:
        copy_cases(core, have["waiting_template"], waiting, "sw", 204, start=have["waiting"])
        have["waiting"] += waiting
    return have


def snapshot(ws: Workspace, spaces: Workspaces, name: str, core: Core) -> str:
    """An identical copy of the database (for a second, independent pass)."""
    core.engine.dispose()  # PostgreSQL copies only a database nobody is connected to
    if ws.kind == "sqlite":
        src = ws.database_url.removeprefix("sqlite:///")
        dst = str(ws.home / f"{name}.db")
        import sqlite3
        with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
            a.backup(b)
        return f"sqlite:///{dst}"
    import psycopg
    source = ws.database_url.rsplit("/", 1)[1]
    with psycopg.connect(f"host=127.0.0.1 port={spaces.pg.port} user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return spaces.pg.url(name)


def query_costs(core: Core, repeat: int = 30) -> dict[str, float]:
    """The two reads every pass makes, timed alone (median of `repeat`)."""
    costs: dict[str, list[float]] = {"due query": [], "next-due query": []}
    at = now()
    with measured():
        _query_costs(core, at, repeat, costs)
    return {k: percentile(v, 50) for k, v in costs.items()}


def _query_costs(core: Core, at, repeat: int, costs: dict[str, list[float]]) -> None:
    for _ in range(repeat):
        with core.uow(read_only=True) as uow:
            started = time.perf_counter()
            uow.cases.due(at)
            costs["due query"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            uow.cases.next_due_instant()
            costs["next-due query"].append((time.perf_counter() - started) * 1000)


def plans(core: Core) -> dict[str, str]:
    """How the database finds the due cases (its query plan)."""
    found = {}
    with core.uow(read_only=True) as uow:
        captured: list[tuple[str, Any]] = []

        def grab(conn, cursor, statement, parameters, context, executemany):
            captured.append((statement, parameters))
        event.listen(core.engine, "before_cursor_execute", grab)
        try:
            uow.cases.due(now())
            uow.cases.next_due_instant()
        finally:
            event.remove(core.engine, "before_cursor_execute", grab)
        for label, (statement, parameters) in zip(("due query", "next-due query"), captured[-2:]):
            prefix = "EXPLAIN QUERY PLAN " if core.engine.dialect.name == "sqlite" else "EXPLAIN "
            rows = uow.conn.exec_driver_sql(prefix + statement, parameters).all()
            found[label] = " | ".join(str(r[-1]) for r in rows)
    return found


def one_pass(core: Core) -> dict[str, Any]:
    os.sync()  # the copy just written is not left for the pass's first fsync to flush (a running server has no such backlog)
    server = ServerTime(core)
    with measured(), timed(core.engine) as timer:
        started = time.perf_counter()
        report = sweep(core, actor="bench")
        wall = (time.perf_counter() - started) * 1000
    return {"wall_ms": wall, "examined": report.examined, "actions": len(report.actions), **timer.as_dict(),
            "server_ms": server.elapsed_ms()}


class ServerTime:
    """PostgreSQL's own execution time for the statements of this database
    (pg_stat_statements, commits included), from now on: the database time
    without the driver's work and the round trips. None where it cannot be
    read (SQLite runs in the process: its database time is all there is)."""

    def __init__(self, core: Core):
        self.core = core
        self.ready = core.engine.dialect.name == "postgresql" and self._run(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", "SELECT pg_stat_statements_reset()") is not None

    def _run(self, *statements: str):
        from sqlalchemy.exc import DBAPIError
        try:
            with self.core.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                for sql in statements[:-1]:
                    conn.exec_driver_sql(sql)
                return conn.exec_driver_sql(statements[-1]).scalar() or 0.0
        except DBAPIError:  # the library is not loaded in this server
            return None

    def elapsed_ms(self) -> float | None:
        if not self.ready:
            return None
        return float(self._run(
            "SELECT sum(total_exec_time) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) AND position('pg_stat_statements' in query) = 0"))


def cli_pass(ws: Workspace, url: str) -> dict[str, Any]:
    os.sync()
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "custody", "sweep", "--json"], env=ws.env(CUSTODY_DATABASE_URL=url), cwd=ROOT,
                         capture_output=True, text=True, timeout=1800, preexec_fn=raise_priority)
    wall = (time.perf_counter() - started) * 1000
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    import json
    return {"wall_ms": wall, "actions": len(json.loads(out.stdout)["actions"])}


def sweeps(spaces: Workspaces, kind: str, sizes: tuple[int, ...], due: int) -> dict[str, Any]:
    """One pass with `due` cases due among each number of open cases (the
    same due cases each time: the work is constant, the waiting grows)."""
    ws = spaces.new("sweep", kind)
    core = ws.core(setup=True)
    have: dict[str, Any] = {}
    rows = []
    for size in sizes:
        started = time.perf_counter()
        have = build(core, open_total=size, due=due, have=have)
        built = time.perf_counter() - started
        if open_count(core) != size:
            raise RuntimeError(f"population has {open_count(core)} open cases, not {size}")
        row: dict[str, Any] = {"open": size, "due": due, "build_s": built, "db_bytes": database_bytes(core)}
        if kind == "postgresql":
            analyze(core)  # as autovacuum does after a bulk load
        copy = snapshot(ws, spaces, f"sweep_{kind}_{size}_a", core)
        twin = Core(_engine(copy), core.policy, core.clock)
        row["warm"] = prewarm(twin)
        row["queries_ms"] = query_costs(twin)
        row["plan"] = plans(twin)
        row["pass"] = one_pass(twin)
        twin.engine.dispose()
        _drop(spaces, copy)
        copy = snapshot(ws, spaces, f"sweep_{kind}_{size}_b", core)
        row["cli"] = cli_pass(ws, copy)
        _drop(spaces, copy)
        rows.append(row)
        server = f" ({row['pass']['server_ms']:.1f} ms of it in the server)" if row["pass"].get("server_ms") is not None else ""
        print(f"   sweep {kind} {size} open, {due} due: {row['pass']['db_ms']:.1f} ms database{server}, {row['pass']['wall_ms']:.1f} ms pass, "
              f"{row['cli']['wall_ms']:.0f} ms command", file=sys.stderr, flush=True)
    rows[-1]["table_bytes"] = table_bytes(core)
    core.engine.dispose()
    return {"rows": rows}


def analyze(core: Core) -> None:
    with core.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


def prewarm(core: Core) -> str:
    """A running PostgreSQL server has the tables it works on in its cache; a
    database just copied has not. Load them, as time would (SQLite's copy is
    in the operating system's cache already, having just been written)."""
    if core.engine.dialect.name != "postgresql":
        return "operating system cache (just written)"
    with core.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        pages = conn.exec_driver_sql(
            "SELECT sum(pg_prewarm(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')").scalar_one()
    return f"pg_prewarm: {pages} pages"


def _engine(url: str):
    from custody.store.db import make_engine
    return make_engine(url)


def _drop(spaces: Workspaces, url: str) -> None:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            try:
                shutil.os.remove(path + suffix)
            except FileNotFoundError:
                pass
        return
    import psycopg
    with psycopg.connect(f"host=127.0.0.1 port={spaces.pg.port} user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
