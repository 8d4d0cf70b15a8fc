"""Which Prefect flow run mirrors each case, and the case version it has seen,
so a reconciler can bring runs in line with the database (never the reverse).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_runs",
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_version", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_runs")),
    )


def downgrade() -> None:
    op.drop_table("case_runs")
