"""The audit trail cannot be emptied with TRUNCATE either. On PostgreSQL a
TRUNCATE fires no row trigger, so 0002's guard against UPDATE and DELETE let it
through; a statement trigger refuses it. (SQLite has no TRUNCATE: its DELETE
without WHERE fires the row trigger.)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_trail_no_truncate BEFORE TRUNCATE ON audit_trail "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_trail_no_truncate ON audit_trail")
