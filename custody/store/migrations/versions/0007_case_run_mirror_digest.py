"""The digest of what a case's run mirrors (custody/adapters/prefect/mirror.py), stored with the
version it was read at, so that a commit that changes nothing the run acts on
(a reminder sent, a notice acknowledged) marks the run in step without waking
it. Rows from before have no digest: their runs are woken once, as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_runs") as batch:
        batch.add_column(sa.Column("mirror_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_runs") as batch:
        batch.drop_column("mirror_digest")
