"""audit_heads: the head of each audit chain (its last sequence number and that
entry's hash), written in the transaction that appends to the chain. A chain's
links show an entry changed, removed or reordered inside it; only its head
shows that its newest entries were removed, so the head lives in a table of its
own, which a DELETE on the trail does not touch, and which the database lets
move only forward (never deleted, never set back).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_heads",
        sa.Column("chain", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_audit_heads")),
    )
    op.execute("INSERT INTO audit_heads (chain, seq, entry_hash) SELECT a.chain, a.seq, a.entry_hash FROM audit_trail a "
               "WHERE a.seq = (SELECT max(b.seq) FROM audit_trail b WHERE b.chain = a.chain)")
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("CREATE TRIGGER audit_heads_no_delete BEFORE DELETE ON audit_heads "
                   "BEGIN SELECT RAISE(ABORT, 'audit_heads only move forward'); END")
        op.execute("CREATE TRIGGER audit_heads_forward BEFORE UPDATE ON audit_heads "
                   "WHEN NEW.chain <> OLD.chain OR NEW.seq <= OLD.seq "
                   "BEGIN SELECT RAISE(ABORT, 'audit_heads only move forward'); END")
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_heads_forward() RETURNS trigger AS $$ BEGIN "
            "IF TG_OP = 'UPDATE' AND NEW.chain = OLD.chain AND NEW.seq > OLD.seq THEN RETURN NEW; END IF; "
            "RAISE EXCEPTION 'audit_heads only move forward'; END; $$ LANGUAGE plpgsql")
        op.execute("CREATE TRIGGER audit_heads_forward BEFORE UPDATE OR DELETE ON audit_heads "
                   "FOR EACH ROW EXECUTE FUNCTION audit_heads_forward()")
        op.execute("CREATE TRIGGER audit_heads_no_truncate BEFORE TRUNCATE ON audit_heads "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_heads_forward()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_heads_no_truncate ON audit_heads")
        op.execute("DROP TRIGGER audit_heads_forward ON audit_heads")
        op.execute("DROP FUNCTION audit_heads_forward()")
    op.drop_table("audit_heads")  # SQLite drops a table's triggers with it
