"""Every event received, by its id: the inbox that makes a re-sent event a duplicate."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import RowMapping

from custody.store import schema as t
from custody.store.repositories.base import Repository


class InboxRepository(Repository):
    def get(self, event_id: str) -> RowMapping | None:
        return self.conn.execute(select(t.inbox).where(t.inbox.c.event_id == event_id)).mappings().first()

    def add(self, **values: Any) -> bool:
        return self._insert_ignore(t.inbox, values) == 1

    def set_outcome(self, event_id: str, case_id: str | None, outcome: str) -> None:
        self.conn.execute(update(t.inbox).where(t.inbox.c.event_id == event_id).values(case_id=case_id, outcome=outcome))

    def pending(self, booking_number: str) -> list[RowMapping]:
        """Events about this booking that arrived before any case existed for it."""
        return list(self.conn.execute(
            select(t.inbox).where(t.inbox.c.booking_number == booking_number, t.inbox.c.case_id.is_(None))
            .order_by(t.inbox.c.occurred_at, t.inbox.c.received_at)
        ).mappings())

    def for_case(self, case_id: str) -> list[RowMapping]:
        return self.for_cases([case_id]).get(case_id, [])

    def for_cases(self, case_ids: list[str]) -> dict[str, list[RowMapping]]:
        return self._rows_by_case(t.inbox, case_ids, t.inbox.c.received_at, t.inbox.c.event_id)
