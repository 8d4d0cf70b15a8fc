"""The cases table loses its index on status alone: (status, next_due_at)
starts with status and serves every query by status, while every release
order, reminder and hold step paid to update one more index (a sweep's writes
on PostgreSQL are mostly index upkeep). The index on next_due_at alone stays:
PostgreSQL finds the earliest due instant of open cases through it (the
composite one cannot give a minimum over several statuses without a scan).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_status")


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.create_index("ix_cases_status", ["status"], unique=False)
