import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, text
from sqlalchemy.exc import DatabaseError as SqlDatabaseError

from custody.store import schema as t
from custody.store.db import DatabaseError, current_revision, head_revision, make_engine, migrate
from tests.builders import utc


def test_migrations_build_exactly_the_schema_the_code_uses(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert diff == []
    assert current_revision(engine) == head_revision()


def test_an_older_database_upgrades_and_keeps_its_rows(db_url):
    engine = make_engine(db_url)
    migrate(engine, "0001")
    with engine.begin() as conn:
        conn.execute(insert(t.audit).values(case_id="2026-00001", at=utc(2026, 3, 1), actor="old", action="case_opened",
                                            status_before=None, status_after="awaiting_release", reason="from the old release"))
        conn.execute(text("UPDATE audit_trail SET actor = 'rewritten'"))  # 0001 did not yet forbid this
    migrate(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT actor, reason FROM audit_trail")).all() == [("rewritten", "from the old release")]
    with pytest.raises(SqlDatabaseError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(text("UPDATE audit_trail SET actor = 'again'"))
    with pytest.raises(SqlDatabaseError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_trail"))
    if engine.dialect.name == "postgresql":  # TRUNCATE fires no row trigger there
        with pytest.raises(SqlDatabaseError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE audit_trail"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_trail")).scalar_one() == 1


def test_a_database_from_a_newer_release_is_refused(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(DatabaseError, match="9999"):
        migrate(engine)


def test_tables_without_a_revision_are_refused(db_url):
    engine = make_engine(db_url)
    t.metadata.create_all(engine)
    with pytest.raises(DatabaseError, match="no schema revision"):
        migrate(engine)


def test_migrating_twice_is_harmless(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    migrate(engine)
    assert current_revision(engine) == head_revision()


def test_processes_starting_at_once_on_a_new_database_take_turns_to_migrate(db_url):
    """`custody up`, its serve process and a CLI command may all start on a new
    database together: one migrates, the others find it done, none fails."""
    import threading

    starters = 4
    barrier = threading.Barrier(starters)
    failures = []
    engines = [make_engine(db_url) for _ in range(starters)]

    def start(engine):
        barrier.wait(timeout=30)
        try:
            migrate(engine)
        except Exception as exc:  # reported below
            failures.append(repr(exc))

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a migration hung"
    assert failures == []
    assert current_revision(engines[0]) == head_revision()
    for engine in engines:
        engine.dispose()


def test_each_migration_is_named_by_its_revision_so_the_newest_file_is_the_head():
    import ast

    from custody.store.db import MIGRATIONS, newest_revision_file

    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        assigned = {node.targets[0].id: node.value.value for node in ast.parse(path.read_text()).body
                    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id in ("revision", "down_revision")}
        assert assigned["revision"] == path.name[:4], path.name
    assert newest_revision_file() == head_revision()


def test_a_process_on_a_database_at_the_head_starts_without_loading_alembic(db_url):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    engine = make_engine(db_url)
    migrate(engine)
    engine.dispose()
    probe = ("import sys; from custody.store.db import make_engine, migrate; engine = make_engine(sys.argv[1]); migrate(engine); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))")
    out = subprocess.run([sys.executable, "-c", probe, db_url], capture_output=True, text=True, timeout=60, check=True,
                         cwd=root)
    assert out.stdout.strip() == "[]", out.stdout
    # An older database still goes through Alembic and reaches the head.
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE step_event_marks"))
        conn.execute(text("ALTER TABLE outbox DROP COLUMN dropped_reason"))
        conn.execute(text("DROP TABLE report_reads"))
        conn.execute(text("DROP TABLE audit_heads"))  # its triggers go with it
        if conn.dialect.name == "postgresql":
            conn.execute(text("DROP FUNCTION audit_heads_forward()"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0009'"))
    out = subprocess.run([sys.executable, "-c", probe, db_url], capture_output=True, text=True, timeout=60, check=True,
                         cwd=root)
    assert "alembic" in out.stdout
    assert current_revision(engine) == head_revision()
    engine.dispose()
