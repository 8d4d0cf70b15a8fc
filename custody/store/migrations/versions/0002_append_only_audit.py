"""The audit trail is append-only: the database itself refuses UPDATE and
DELETE on it, so no code path (ours or a hand-typed query) can rewrite history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_trail_no_{verb.lower()} BEFORE {verb} ON audit_trail "
                f"BEGIN SELECT RAISE(ABORT, 'audit_trail is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_trail_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'audit_trail is append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER audit_trail_append_only BEFORE UPDATE OR DELETE ON audit_trail "
            "FOR EACH ROW EXECUTE FUNCTION audit_trail_append_only()"
        )
    op.create_index("ix_cases_status_next_due_at", "cases", ["status", "next_due_at"])


def downgrade() -> None:
    op.drop_index("ix_cases_status_next_due_at", "cases")
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER audit_trail_no_update")
        op.execute("DROP TRIGGER audit_trail_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER audit_trail_append_only ON audit_trail")
        op.execute("DROP FUNCTION audit_trail_append_only()")
