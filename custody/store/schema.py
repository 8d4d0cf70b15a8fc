"""The SQL tables. Instants are stored in UTC; SQLite keeps them as fixed-width
text, so ordering and comparison in SQL stay correct there too."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime written to the database")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

counters = Table(
    "counters", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
)

bookings = Table(
    "bookings", metadata,
    Column("booking_number", String(128), primary_key=True),
    Column("facility", String(32), nullable=False),
    Column("release_authorized_at", UTCDateTime),
    Column("release_reason", String(32)),
    Column("expected_release_at", UTCDateTime),
    Column("released_at", UTCDateTime),
    Column("first_seen_at", UTCDateTime, nullable=False),
)

cases = Table(
    "cases", metadata,
    Column("case_id", String(32), primary_key=True),
    Column("booking_number", String(128), nullable=False, index=True),
    Column("facility", String(32), nullable=False),
    Column("a_number", String(16), nullable=False, index=True),
    Column("status", String(32), nullable=False),
    Column("status_reason", Text),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("current_detainer_id", Integer, nullable=False),
    Column("release_authorized_at", UTCDateTime),
    Column("release_reason", String(32)),
    Column("t0", UTCDateTime),
    Column("anchor_rule", String(32)),
    Column("deadline_at", UTCDateTime),
    Column("release_order_at", UTCDateTime),
    Column("hold_authorized", Boolean, nullable=False, default=False),
    Column("hold_started_at", UTCDateTime),
    Column("no_hold_reason", Text),
    Column("served_at", UTCDateTime),
    Column("served_by", String(128)),
    Column("service_event_id", String(128)),
    Column("copy_served_at", UTCDateTime),
    Column("copy_served_by", String(200)),
    Column("copy_language", String(200)),
    Column("expected_release_at", UTCDateTime),
    Column("lifted_at", UTCDateTime),
    Column("release_ordered_at", UTCDateTime),
    Column("release_order_reason", Text),
    Column("supervisors_paged_at", UTCDateTime),
    Column("overdue_alerted_at", UTCDateTime),
    Column("last_reminder_mark_s", Integer),
    Column("released_at", UTCDateTime),
    Column("transferred_at", UTCDateTime),
    Column("transferred_to", String(200)),
    Column("closed_at", UTCDateTime),
    Column("next_due_at", UTCDateTime, index=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Set by every change of the case, cleared once its Prefect run is known to
    # have seen the change: the bridge's catch-up reads these cases only, not
    # every case there ever was (RunRepository.out_of_sync).
    Column("mirror_pending", Boolean, nullable=False, server_default=true()),
)

detainers = Table(
    "detainers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(32), nullable=False, index=True),
    Column("a_number", String(16), nullable=False),
    Column("ice_event_number", String(128), nullable=False),
    Column("form", String(16), nullable=False),
    Column("requests_custody", Boolean, nullable=False),
    Column("issuing_office", String(200), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("warrant_form", String(16)),
    Column("warrant_number", String(128)),
    Column("subject_name", String(200), nullable=False),
    Column("subject_dob", Date, nullable=False),
    Column("identity_verified", Boolean, nullable=False),
    Column("event_id", String(128), nullable=False),
    UniqueConstraint("a_number", "ice_event_number"),
)

inbox = Table(
    "event_inbox", metadata,
    Column("event_id", String(128), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("booking_number", String(128), nullable=False, index=True),
    Column("facility", String(32)),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("sender", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("case_id", String(32), index=True),
    Column("outcome", Text, nullable=False),
)

audit = Table(
    "audit_trail", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(32), index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("source_event_id", String(128)),
    Column("action", String(64), nullable=False),
    Column("status_before", String(32)),
    Column("status_after", String(32)),
    Column("reason", Text, nullable=False),
    Column("chain", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
    UniqueConstraint("chain", "seq"),
)

# The head of each chain (migration 0011): where a removal of its newest entries shows.
audit_heads = Table(
    "audit_heads", metadata,
    Column("chain", String(32), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("entry_hash", String(64), nullable=False),
)

# How far each chain's steps have been published to Prefect's event feed (migration 0013).
step_event_marks = Table(
    "step_event_marks", metadata,
    Column("chain", String(32), primary_key=True),
    Column("seq", Integer, nullable=False),
)

roster_loads = Table(
    "roster_loads", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("loaded_at", UTCDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("source", String(500), nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("officers", Integer, nullable=False),
)

roster = Table(
    "roster_entries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("badge", String(128), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("certified_on", Date, nullable=False),
    Column("expires_on", Date, nullable=False),
    Column("facility", String(32), nullable=False),
    Column("valid_from", UTCDateTime, nullable=False),
    Column("valid_to", UTCDateTime),
    Column("load_id", Integer, ForeignKey("roster_loads.id"), nullable=False),
    Column("ended_by_load_id", Integer, ForeignKey("roster_loads.id")),
)

outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(300), nullable=False, unique=True),
    Column("case_id", String(32), index=True),
    Column("kind", String(64), nullable=False),
    Column("recipient_group", String(64), nullable=False),
    Column("urgency", String(16), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(128)),
    Column("claimed_until", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("last_error", Text),
    Column("acknowledged_at", UTCDateTime),
    Column("acknowledged_by", String(200)),
    Column("dropped_reason", Text),  # state "dropped": why it was not sent (its purpose had passed)
)
Index("ix_outbox_state_next_attempt_at", outbox.c.state, outbox.c.next_attempt_at)
Index("ix_cases_status_next_due_at", cases.c.status, cases.c.next_due_at)
# Partial: only the cases whose run may lag (a handful), in the order the catch-up takes them.
# `IS true` (not `= :param`) so that SQLite, too, sees that the catch-up's query is covered.
Index("ix_cases_mirror_pending", cases.c.next_due_at, cases.c.case_id,
      sqlite_where=cases.c.mirror_pending.is_(True), postgresql_where=cases.c.mirror_pending.is_(True))

case_runs = Table(
    "case_runs", metadata,
    Column("case_id", String(32), primary_key=True),
    Column("flow_run_id", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("synced_version", Integer, nullable=False),
    Column("last_error", Text),
    Column("mirror_digest", String(64)),  # custody/adapters/prefect/mirror.py: what the run mirrored at synced_version
)

delivery_attempts = Table(
    "delivery_attempts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("outbox_id", Integer, ForeignKey("outbox.id"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("relay", String(128), nullable=False),
    Column("channel", String(500), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", Text),
)

# How far the officers' reports submitted in the Prefect UI have been read into
# the database, per reader (custody/adapters/prefect/form_reader.py): every report Prefect had
# stored by `read_through` is in the inbox. Rule 6 waits on it (docs/rules.md).
report_reads = Table(
    "report_reads", metadata,
    Column("source", String(64), primary_key=True),
    Column("read_through", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
)
