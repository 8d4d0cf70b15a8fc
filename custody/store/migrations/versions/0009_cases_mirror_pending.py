"""cases.mirror_pending: set by every change of a case, cleared once its
Prefect run has seen it, with a partial index over the set ones. The bridge's
catch-up (twice a minute) used to join every case there ever was with its run
to find the few whose run lags; it now reads those few.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("mirror_pending", sa.Boolean(), nullable=False, server_default=sa.true()))
    # Cases whose run has seen their latest version start cleared, as the bridge would have left them.
    op.execute("UPDATE cases SET mirror_pending = false WHERE EXISTS (SELECT 1 FROM case_runs r WHERE r.case_id = cases.case_id "
               "AND r.flow_run_id IS NOT NULL AND r.synced_version >= cases.version)")
    pending = sa.column("mirror_pending").is_(True)
    op.create_index("ix_cases_mirror_pending", "cases", ["next_due_at", "case_id"], sqlite_where=pending, postgresql_where=pending)


def downgrade() -> None:
    op.drop_index("ix_cases_mirror_pending", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("mirror_pending")
