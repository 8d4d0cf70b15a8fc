"""report_reads: how far the officers' reports submitted in the Prefect UI have
been read into the database, by the reader in `custody up` (one row per
reader). Rule 6's window ends without a service only once every report made
before it closed has been read (docs/rules.md), so every backstop reads this.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_reads",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("read_through", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_report_reads")),
    )


def downgrade() -> None:
    op.drop_table("report_reads")
