import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, text
from sqlalchemy.exc import DatabaseError as SqlDatabaseError

from models import schema as t
from models.db import DatabaseError, current_revision, head_revision, make_engine, migrate
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
