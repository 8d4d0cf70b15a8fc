"""Chain the audit trail by hash (one chain per case), so tampering is evident.
Existing entries are chained in the order they were written.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

from models.audit_chain import GENESIS, chain_of, entry_hash

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

APPEND_ONLY = {
    "sqlite": (["DROP TRIGGER audit_trail_no_update", "DROP TRIGGER audit_trail_no_delete"],
               ["CREATE TRIGGER audit_trail_no_update BEFORE UPDATE ON audit_trail "
                "BEGIN SELECT RAISE(ABORT, 'audit_trail is append-only'); END",
                "CREATE TRIGGER audit_trail_no_delete BEFORE DELETE ON audit_trail "
                "BEGIN SELECT RAISE(ABORT, 'audit_trail is append-only'); END"]),
    "postgresql": (["ALTER TABLE audit_trail DISABLE TRIGGER audit_trail_append_only"],
                   ["ALTER TABLE audit_trail ENABLE TRIGGER audit_trail_append_only"]),
}


def upgrade() -> None:
    bind = op.get_bind()
    drop, create = APPEND_ONLY.get(bind.dialect.name, ([], []))
    for statement in drop:
        op.execute(statement)
    with op.batch_alter_table("audit_trail") as batch_op:
        batch_op.add_column(sa.Column("chain", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("entry_hash", sa.String(length=64), nullable=True))
    audit = sa.table("audit_trail", *(sa.column(n) for n in (
        "id", "case_id", "at", "actor", "source_event_id", "action", "status_before", "status_after", "reason",
        "chain", "seq", "prev_hash", "entry_hash")))
    heads: dict[str, tuple[int, str]] = {}
    for row in bind.execute(sa.select(audit).order_by(audit.c.id)).mappings():
        chain = chain_of(row["case_id"])
        seq, prev = heads.get(chain, (0, GENESIS))
        entry = {**row, "chain": chain, "seq": seq + 1}
        if isinstance(entry["at"], str):  # SQLite hands back text here
            from datetime import datetime, timezone
            entry["at"] = datetime.fromisoformat(entry["at"]).replace(tzinfo=timezone.utc)
        digest = entry_hash(prev, entry)
        bind.execute(sa.update(audit).where(audit.c.id == row["id"]).values(chain=chain, seq=seq + 1, prev_hash=prev, entry_hash=digest))
        heads[chain] = (seq + 1, digest)
    with op.batch_alter_table("audit_trail") as batch_op:
        batch_op.alter_column("chain", nullable=False)
        batch_op.alter_column("seq", nullable=False)
        batch_op.alter_column("prev_hash", nullable=False)
        batch_op.alter_column("entry_hash", nullable=False)
        batch_op.create_unique_constraint(op.f("uq_audit_trail_chain_seq"), ["chain", "seq"])
    for statement in create:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the audit chain is not removed")
