"""outbox.dropped_reason: why the relay did not send a message whose purpose had
passed by the time it could be sent (a reminder for a case that ended, a
release order for a person already released); such a row's state is `dropped`.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("dropped_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("dropped_reason")
