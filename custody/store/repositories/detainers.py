"""Every detainer received for a case (a case rests on its current one)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import RowMapping

from custody.store import schema as t
from custody.store.repositories.base import Repository
from models.domain import Detainer


class DetainerRepository(Repository):
    def find(self, a_number: str, ice_event_number: str) -> RowMapping | None:
        return self.conn.execute(select(t.detainers).where(
            t.detainers.c.a_number == a_number, t.detainers.c.ice_event_number == ice_event_number)).mappings().first()

    def add(self, case_id: str, detainer: Detainer) -> int:
        values = {k: getattr(detainer, k) for k in (
            "a_number", "ice_event_number", "requests_custody", "issuing_office", "issued_at", "received_at",
            "warrant_number", "identity_verified", "subject_name", "subject_dob", "event_id")}
        values.update(case_id=case_id, form=str(detainer.form),
                      warrant_form=str(detainer.warrant_form) if detainer.warrant_form else None)
        return self.conn.execute(insert(t.detainers).values(**values)).inserted_primary_key[0]

    def for_case(self, case_id: str) -> list[RowMapping]:
        return self.for_cases([case_id]).get(case_id, [])

    def for_cases(self, case_ids: list[str]) -> dict[str, list[RowMapping]]:
        return self._rows_by_case(t.detainers, case_ids, t.detainers.c.id)

    def received_between(self, start: datetime, end: datetime) -> list[RowMapping]:
        d = t.detainers
        return list(self.conn.execute(select(d.c.id, d.c.case_id, d.c.form, d.c.warrant_form, d.c.received_at)
                                      .where(d.c.received_at >= start, d.c.received_at < end)).mappings())
