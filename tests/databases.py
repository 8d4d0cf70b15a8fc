"""Which database the tests run on.

By default every test gets its own SQLite file. When CUSTODY_TEST_DATABASE_URL
names a PostgreSQL server (`.ci/run`'s second pass; `bash .ci/postgres start DIR`
makes one), every test gets its own fresh database on it instead: the same
folder always maps to the same database within a session, so a test's own
engine and the `custody` processes it starts share one database, as they share
one SQLite file. A Prefect server started by a test gets a database of its own
on the same server."""
from __future__ import annotations

import atexit
import hashlib
import os
import secrets
import threading
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine, make_url

SERVER_URL = os.environ.get("CUSTODY_TEST_DATABASE_URL") or None
ON_POSTGRES = SERVER_URL is not None and make_url(SERVER_URL).get_backend_name() == "postgresql"
if SERVER_URL is not None and not ON_POSTGRES:
    raise RuntimeError(f"CUSTODY_TEST_DATABASE_URL: only a PostgreSQL server is supported, not {SERVER_URL!r}")

_SESSION = secrets.token_hex(3)  # databases of an earlier, interrupted session are never reused
_created: dict[str, str] = {}
_lock = threading.Lock()
_admin: Engine | None = None


def _admin_engine() -> Engine:
    global _admin
    if _admin is None:
        _admin = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT", pool_size=1)
        atexit.register(drop_created)
    return _admin


def _fresh_database(key: str, prefix: str) -> str:
    name = f"{prefix}_{_SESSION}_{hashlib.sha256(key.encode()).hexdigest()[:20]}"
    with _lock:
        if name not in _created:
            with _admin_engine().connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            _created[name] = key
    return name


def database_url(folder: Path, name: str = "custody") -> str:
    """The application database of the test that owns `folder`."""
    if not ON_POSTGRES:
        return f"sqlite:///{Path(folder) / f'{name}.db'}"
    database = _fresh_database(f"{Path(folder).resolve()}/{name}", "t")
    return make_url(SERVER_URL).set(database=database).render_as_string(hide_password=False)


def prefect_database_url(folder: Path) -> str | None:
    """A fresh database for a Prefect server started by a test (None on the SQLite
    pass: Prefect's own SQLite file under PREFECT_HOME)."""
    if not ON_POSTGRES:
        return None
    database = _fresh_database(f"{Path(folder).resolve()}/prefect", "p")
    return make_url(SERVER_URL).set(drivername="postgresql+asyncpg", database=database).render_as_string(hide_password=False)


def remove_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).unlink(missing_ok=True)
        return
    with _lock, _admin_engine().connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        _created.pop(parsed.database, None)


def demo_databases(home: Path) -> dict[str, str]:
    """What `custody up --demo` with CUSTODY_HOME=home needs to run its demo on
    this pass's databases (nothing on the SQLite pass: the demo's own files)."""
    if not ON_POSTGRES:
        return {}
    return {"CUSTODY_DEMO_DATABASE_URL": database_url(Path(home) / "demo"),
            "CUSTODY_DEMO_PREFECT_DATABASE_URL": prefect_database_url(Path(home) / "demo")}


def prefect_server_uses(url: str | None) -> bool:
    """Whether a Prefect server given this database really keeps its runs there
    (not silently in a SQLite file): its flow_run table exists in it."""
    if url is None:
        return False
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        return "flow_run" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def has_tables(url: str) -> bool:
    """Whether anything was ever created in the database (a SQLite file that does
    not exist has none)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database).exists():
        return False
    engine = create_engine(url)
    try:
        return bool(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def allow_audit_rewrite(conn, verb: str) -> None:
    """Someone with database access lifting the append-only guard of the audit
    trail behind the software's back (tamper tests). verb: UPDATE or DELETE."""
    if conn.dialect.name == "sqlite":
        conn.execute(text(f"DROP TRIGGER audit_trail_no_{verb.lower()}"))
    else:
        conn.execute(text("ALTER TABLE audit_trail DISABLE TRIGGER audit_trail_append_only"))


def allow_head_rewrite(conn) -> None:
    """The same for the chains' heads (audit_heads, migration 0011)."""
    if conn.dialect.name == "sqlite":
        conn.execute(text("DROP TRIGGER audit_heads_no_delete"))
        conn.execute(text("DROP TRIGGER audit_heads_forward"))
    else:
        conn.execute(text("ALTER TABLE audit_heads DISABLE TRIGGER audit_heads_forward"))


def drop_created() -> None:
    """End of session: remove the databases this session made."""
    if _admin is None:
        return
    with _admin.connect() as conn:
        for name in list(_created):
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            _created.pop(name, None)
    _admin.dispose()
