"""Engines and migrations.

SQLite is the embedded default; PostgreSQL is configuration. On SQLite every
write transaction starts with BEGIN IMMEDIATE: a deferred transaction that read
a row and then tries to write after another process committed fails at once
with "database is locked" instead of waiting, which would turn a harmless race
between two sweeps into an error."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_MIGRATIONS = 0x0C057003  # PostgreSQL advisory lock space (custody/store/repositories/base.py has the others)


class DatabaseError(RuntimeError):
    pass


class DatabaseBusy(RuntimeError):
    """Another writer held a lock this write needed for longer than the wait
    allows (or kept winning the race): the transaction was rolled back and
    nothing of it is stored; the same request may simply be sent again."""


# SQLSTATEs of PostgreSQL's lock conflicts: lock_not_available (lock_timeout or
# NOWAIT), deadlock_detected and serialization_failure (both: decide again).
_PG_LOCK_WAIT, _PG_RETRY = {"55P03"}, {"40P01", "40001"}


def contention(exc: BaseException) -> str | None:
    """"wait" when a lock wait ran out, "retry" when the database chose this
    transaction as the loser of a conflict, None for any other error."""
    if not isinstance(exc, OperationalError):
        return None
    code = getattr(exc.orig, "sqlstate", None)
    if code in _PG_LOCK_WAIT:
        return "wait"
    if code in _PG_RETRY:
        return "retry"
    message = str(exc.orig).lower()
    if code is None and ("database is locked" in message or "database table is locked" in message
                         or "database is busy" in message):
        return "wait"
    return None


def make_engine(url: str, lock_timeout: float | None = None) -> Engine:
    """lock_timeout: seconds a write waits for another writer's lock before it
    gives up (DatabaseBusy at intake). SQLite waits 30 s unless told; PostgreSQL
    waits as long as it takes unless told."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        wait = 30.0 if lock_timeout is None else lock_timeout
        engine = create_engine(url, connect_args={"timeout": wait}, poolclass=None)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # an accepted event survives power loss
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            # Readers (WAL) need no lock and must not queue behind the backstop.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("custody_read_only") else "BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() != "postgresql":
        raise DatabaseError(f"database URL: {parsed.get_backend_name()!r} is not supported "
                            "(use sqlite:///PATH or postgresql://USER@HOST/DATABASE)")
    if parsed.drivername == "postgresql":  # the driver we ship, not SQLAlchemy's default psycopg2
        parsed = parsed.set(drivername="postgresql+psycopg")
    connect_args = {}
    if parsed.get_driver_name() in ("psycopg", "psycopg2"):
        # Instants are timestamptz; a UTC session makes any text the database must
        # read as an instant (an old row, a hand-typed query) mean UTC, as on SQLite.
        connect_args["options"] = "-c timezone=UTC"
        if lock_timeout is not None:
            connect_args["options"] += f" -c lock_timeout={max(1, int(lock_timeout * 1000))}"
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)


def _alembic_config() -> Config:
    from alembic.config import Config
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def newest_revision_file() -> str:
    """The head as the migrations' file names give it: each revision is named by
    its file's number (0009_....py is revision "0009", tests/integration/test_migrations.py
    holds every file to it), so the newest file is the head without loading Alembic."""
    return max(p.name[:4] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _at_head(engine: Engine) -> bool:
    """Every process (each CLI command, each Prefect step) starts by migrating; a
    database already at the head needs one read, not Alembic's import (~0.1 CPU-s).
    The read does not wait for a migration in progress: a process that starts
    while a newer release migrates runs as one started a moment earlier would."""
    try:  # a reader's transaction: on SQLite no write lock, so no wait behind another writer
        with engine.connect().execution_options(custody_read_only=True) as conn:
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:  # a new database: no version table yet
        return False
    return found == [newest_revision_file()]


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision`. A database from a newer release, or
    one with our tables but no revision, is refused rather than guessed at.

    Several processes may start at once on a new database (`custody up`, its
    serve process, a CLI command, a second machine): they take turns, so one
    migrates and the others find it done. SQLite: the write lock of BEGIN
    IMMEDIATE. PostgreSQL, whose DDL would otherwise collide: a lock held until
    the migration commits."""
    if revision == "head" and _at_head(engine):
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    script = ScriptDirectory.from_config(_alembic_config())
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:space, 0)"), {"space": _LOCK_MIGRATIONS})
        current = MigrationContext.configure(conn).get_current_revision()
        tables = set(engine.dialect.get_table_names(conn))
        if current is not None:
            try:
                script.get_revision(current)
            except Exception:
                raise DatabaseError(
                    f"the database is at schema revision {current!r}, which this version does not know "
                    f"(newest known: {script.get_current_head()}); it was written by a newer release"
                ) from None
        elif tables & {"cases", "event_inbox", "audit_trail"}:
            raise DatabaseError("the database has custody tables but no schema revision; refusing to guess")
        config = _alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
