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


def kept_only_the_refused_attempt(before: dict, after: dict) -> bool:
    """A refused service leaves the case as it was: only its inbox entry, the
    audit entry saying it was refused and the supervisors' notice are new."""
    changed = {name for name in after if after[name] != before[name]}
    new = lambda name: [row for row in after[name] if row not in before[name]]
    legal = [c.name for c in schema.cases.c if c.name not in {"version", "updated_at", "mirror_pending"}]
    case_state = lambda rows: sorted(tuple(row[i] for i, c in enumerate(schema.cases.c) if c.name in legal) for row in rows)
    return (changed <= {"event_inbox", "audit_trail", "audit_heads", "outbox", "cases"}
            and case_state(after["cases"]) == case_state(before["cases"])
            and all(row in after[name] for name in before for row in before[name] if name not in {"audit_heads", "cases"})
            and any("service_refused" in row for row in new("audit_trail"))
            and all("service-refused" in row for row in new("outbox")))
