"""The core tables: cases, detainers, bookings, the event inbox, the audit
trail, the WSO roster and the notification outbox.

Revision ID: 0001
Revises: 
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_trail',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('source_event_id', sa.String(length=128), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('status_before', sa.String(length=32), nullable=True),
    sa.Column('status_after', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_trail'))
    )
    with op.batch_alter_table('audit_trail', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_trail_case_id'), ['case_id'], unique=False)

    op.create_table('bookings',
    sa.Column('booking_number', sa.String(length=128), nullable=False),
    sa.Column('facility', sa.String(length=32), nullable=False),
    sa.Column('release_authorized_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_reason', sa.String(length=32), nullable=True),
    sa.Column('expected_release_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('booking_number', name=op.f('pk_bookings'))
    )
    op.create_table('cases',
    sa.Column('case_id', sa.String(length=32), nullable=False),
    sa.Column('booking_number', sa.String(length=128), nullable=False),
    sa.Column('facility', sa.String(length=32), nullable=False),
    sa.Column('a_number', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('current_detainer_id', sa.Integer(), nullable=False),
    sa.Column('release_authorized_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_reason', sa.String(length=32), nullable=True),
    sa.Column('t0', sa.DateTime(timezone=True), nullable=True),
    sa.Column('anchor_rule', sa.String(length=32), nullable=True),
    sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_order_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hold_authorized', sa.Boolean(), nullable=False),
    sa.Column('hold_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('no_hold_reason', sa.Text(), nullable=True),
    sa.Column('served_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('served_by', sa.String(length=128), nullable=True),
    sa.Column('service_event_id', sa.String(length=128), nullable=True),
    sa.Column('copy_served_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('copy_served_by', sa.String(length=200), nullable=True),
    sa.Column('copy_language', sa.String(length=200), nullable=True),
    sa.Column('expected_release_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_ordered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_order_reason', sa.Text(), nullable=True),
    sa.Column('supervisors_paged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('overdue_alerted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_reminder_mark_s', sa.Integer(), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('transferred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('transferred_to', sa.String(length=200), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('case_id', name=op.f('pk_cases'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cases_a_number'), ['a_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_booking_number'), ['booking_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_next_due_at'), ['next_due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_status'), ['status'], unique=False)

    op.create_table('counters',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_counters'))
    )
    op.create_table('event_inbox',
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('booking_number', sa.String(length=128), nullable=False),
    sa.Column('facility', sa.String(length=32), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_event_inbox'))
    )
    with op.batch_alter_table('event_inbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_inbox_booking_number'), ['booking_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_event_inbox_case_id'), ['case_id'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('idempotency_key', sa.String(length=300), nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=True),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('recipient_group', sa.String(length=64), nullable=False),
    sa.Column('urgency', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=128), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_outbox_idempotency_key'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_outbox_state_next_attempt_at', ['state', 'next_attempt_at'], unique=False)

    op.create_table('roster_loads',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('file_sha256', sa.String(length=64), nullable=False),
    sa.Column('officers', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_loads'))
    )
    op.create_table('detainers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=False),
    sa.Column('a_number', sa.String(length=16), nullable=False),
    sa.Column('ice_event_number', sa.String(length=128), nullable=False),
    sa.Column('form', sa.String(length=16), nullable=False),
    sa.Column('requests_custody', sa.Boolean(), nullable=False),
    sa.Column('issuing_office', sa.String(length=200), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('warrant_form', sa.String(length=16), nullable=True),
    sa.Column('warrant_number', sa.String(length=128), nullable=True),
    sa.Column('subject_name', sa.String(length=200), nullable=False),
    sa.Column('subject_dob', sa.Date(), nullable=False),
    sa.Column('identity_verified', sa.Boolean(), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_detainers')),
    sa.UniqueConstraint('a_number', 'ice_event_number', name=op.f('uq_detainers_a_number_ice_event_number'))
    )
    with op.batch_alter_table('detainers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_detainers_case_id'), ['case_id'], unique=False)

    op.create_table('roster_entries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('badge', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('certified_on', sa.Date(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.Column('facility', sa.String(length=32), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('load_id', sa.Integer(), nullable=False),
    sa.Column('ended_by_load_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['ended_by_load_id'], ['roster_loads.id'], name=op.f('fk_roster_entries_ended_by_load_id_roster_loads')),
    sa.ForeignKeyConstraint(['load_id'], ['roster_loads.id'], name=op.f('fk_roster_entries_load_id_roster_loads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_entries'))
    )
    with op.batch_alter_table('roster_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_roster_entries_badge'), ['badge'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('roster_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roster_entries_badge'))

    op.drop_table('roster_entries')
    with op.batch_alter_table('detainers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_detainers_case_id'))

    op.drop_table('detainers')
    op.drop_table('roster_loads')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_state_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_outbox_case_id'))

    op.drop_table('outbox')
    with op.batch_alter_table('event_inbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_inbox_case_id'))
        batch_op.drop_index(batch_op.f('ix_event_inbox_booking_number'))

    op.drop_table('event_inbox')
    op.drop_table('counters')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_status'))
        batch_op.drop_index(batch_op.f('ix_cases_next_due_at'))
        batch_op.drop_index(batch_op.f('ix_cases_booking_number'))
        batch_op.drop_index(batch_op.f('ix_cases_a_number'))

    op.drop_table('cases')
    op.drop_table('bookings')
    with op.batch_alter_table('audit_trail', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_trail_case_id'))

    op.drop_table('audit_trail')
