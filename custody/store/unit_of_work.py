"""The unit of work over SQL: one transaction, and the repository of each
aggregate over it (inbox, bookings, cases, detainers, audit, outbox, runs,
form reads, roster). What they write commits together or not at all."""
from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection, Engine

from custody.store.repositories.audit import AuditRepository
from custody.store.repositories.base import LOCK_PERSON, advisory_lock
from custody.store.repositories.bookings import BookingRepository
from custody.store.repositories.cases import CaseRepository
from custody.store.repositories.detainers import DetainerRepository
from custody.store.repositories.form_reads import FormReadRepository
from custody.store.repositories.inbox import InboxRepository
from custody.store.repositories.outbox import OutboxRepository
from custody.store.repositories.roster import RosterRepository
from custody.store.repositories.runs import RunRepository
from custody.store.repositories.step_events import StepEventRepository


class SqlUnitOfWork:
    inbox: InboxRepository
    bookings: BookingRepository
    cases: CaseRepository
    detainers: DetainerRepository
    audit: AuditRepository
    outbox: OutboxRepository
    runs: RunRepository
    form_reads: FormReadRepository
    roster: RosterRepository
    step_events: StepEventRepository

    def __init__(self, engine: Engine, read_only: bool = False):
        self.engine = engine
        self.read_only = read_only
        self.conn: Connection | None = None

    def __enter__(self) -> "SqlUnitOfWork":
        self.conn = self.engine.connect()
        if self.read_only:
            self.conn = self.conn.execution_options(custody_read_only=True)
        self._tx = self.conn.begin()
        for name, repository in _REPOSITORIES.items():
            setattr(self, name, repository(self.conn))
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self.conn.close()
            self.conn = None

    def commit(self) -> None:
        self._tx.commit()

    def rollback(self) -> None:
        self._tx.rollback()

    def savepoint(self):
        """A nested transaction: its `rollback()` undoes only what was done since."""
        return self.conn.begin_nested()

    def lock_person(self, a_number: str) -> None:
        """Rule 11 (one active case per person) is a read-then-insert across
        bookings: two detainers for one A-number at two bookings must not both
        find no open case. PostgreSQL: a lock per A-number until commit."""
        advisory_lock(self.conn, LOCK_PERSON, a_number)


_REPOSITORIES = {
    "inbox": InboxRepository, "bookings": BookingRepository, "cases": CaseRepository,
    "detainers": DetainerRepository, "audit": AuditRepository, "outbox": OutboxRepository,
    "runs": RunRepository, "form_reads": FormReadRepository, "roster": RosterRepository,
    "step_events": StepEventRepository,
}
