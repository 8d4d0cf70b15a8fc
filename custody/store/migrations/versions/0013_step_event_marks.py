"""step_event_marks: how far each case's audit chain has been published to
Prefect's event feed (custody.case.* events, for the operations console and
automations staff build). Started at each chain's head: steps before this
release are in the audit trail, not replayed as events.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "step_event_marks",
        sa.Column("chain", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_step_event_marks")),
    )
    op.execute("INSERT INTO step_event_marks (chain, seq) SELECT chain, seq FROM audit_heads")


def downgrade() -> None:
    op.drop_table("step_event_marks")
