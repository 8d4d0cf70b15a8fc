"""Bookings: the jail's record of a person's stay, locked while an event about it applies."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import RowMapping

from custody.store import schema as t
from custody.store.repositories.base import Repository


class BookingRepository(Repository):
    def get(self, booking_number: str) -> RowMapping | None:
        return self.conn.execute(select(t.bookings).where(t.bookings.c.booking_number == booking_number)).mappings().first()

    def touch(self, booking_number: str, facility: str, now: datetime) -> RowMapping:
        """The booking's row, locked until commit: events about one booking are
        applied one after another (on SQLite every writer is already alone), so
        T0 corrections that touch several cases of it never cross each other."""
        self._insert_ignore(t.bookings, dict(booking_number=booking_number, facility=facility, first_seen_at=now))
        return self.conn.execute(select(t.bookings).where(t.bookings.c.booking_number == booking_number)
                                 .with_for_update()).mappings().one()

    def update(self, booking_number: str, **values: Any) -> None:
        self.conn.execute(update(t.bookings).where(t.bookings.c.booking_number == booking_number).values(**values))

    def first_seen_between(self, start: datetime, end: datetime) -> list[datetime]:
        b = t.bookings
        return list(self.conn.execute(select(b.c.first_seen_at).where(b.c.first_seen_at >= start, b.c.first_seen_at < end)).scalars())
