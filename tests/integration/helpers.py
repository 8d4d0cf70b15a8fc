from sqlalchemy import select, text

from custody.store import schema


def snapshot(engine) -> dict:
    """Every row of every table, to prove that a rejection changed nothing."""
    with engine.connect() as conn:
        tables = {t.name: [tuple(r) for r in conn.execute(select(t))] for t in schema.metadata.sorted_tables}
        tables["alembic_version"] = [tuple(r) for r in conn.execute(text("select * from alembic_version"))]
    return tables


def rows(engine, table, *where):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).where(*where)).mappings()]
