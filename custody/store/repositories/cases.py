"""Cases, the aggregate: read whole with their current detainer, saved by compare-and-set
on the version read (a concurrent writer makes the save fail, never overwrites)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from custody.store import schema as t
from custody.store.repositories.base import Repository
from models.case import Case
from models.domain import OPEN_STATUSES, Detainer, DetainerForm, Status, WarrantForm
from models.policy import Policy

OPEN = [s.value for s in OPEN_STATUSES]


class ConcurrentUpdate(RuntimeError):
    """Someone else changed the case first; re-read and decide again."""


class CaseRepository(Repository):
    def next_id(self, year: int) -> str:
        name = f"case-{year}"
        self._insert_ignore(t.counters, dict(name=name, value=0))
        self.conn.execute(update(t.counters).where(t.counters.c.name == name).values(value=t.counters.c.value + 1))
        value = self.conn.execute(select(t.counters.c.value).where(t.counters.c.name == name)).scalar_one()
        return f"{year}-{value:05d}"

    def get(self, case_id: str) -> Case | None:
        row = self.conn.execute(self._select().where(t.cases.c.case_id == case_id)).mappings().first()
        return _case_from_row(row) if row else None

    def open_for(self, booking_number: str, a_number: str | None = None) -> Case | None:
        """Rule 11: one active case per person, found by booking or by A-number."""
        who = t.cases.c.booking_number == booking_number
        if a_number:
            who = or_(who, t.cases.c.a_number == a_number)
        row = self.conn.execute(
            self._select().where(who, t.cases.c.status.in_(OPEN)).order_by(t.cases.c.opened_at)
        ).mappings().first()
        return _case_from_row(row) if row else None

    def latest_for_booking(self, booking_number: str) -> Case | None:
        row = self.conn.execute(
            self._select().where(t.cases.c.booking_number == booking_number)
            .order_by(t.cases.c.opened_at.desc(), t.cases.c.case_id.desc())
        ).mappings().first()
        return _case_from_row(row) if row else None

    def for_booking(self, booking_number: str) -> list[Case]:
        rows = self.conn.execute(self._select().where(t.cases.c.booking_number == booking_number)
                                 .order_by(t.cases.c.opened_at)).mappings()
        return [_case_from_row(r) for r in rows]

    def open(self, limit: int | None = None, orders_first: bool = False) -> list[Case]:
        """Open cases, soonest deadline first (cases with no deadline yet last);
        `limit`: only that many of them. `orders_first`: every release ordered and
        not yet confirmed comes before the rest (a release ordered without a
        hold is due long before the deadline that would rank it)."""
        c = t.cases.c
        first = (c.status != Status.RELEASE_ORDERED.value,) if orders_first else ()
        query = self._select().where(c.status.in_(OPEN)).order_by(*first, c.deadline_at.is_(None), c.deadline_at, c.case_id)
        rows = self.conn.execute(query if limit is None else query.limit(limit)).mappings()
        return [_case_from_row(r) for r in rows]

    def open_counts(self) -> dict[str, int]:
        """How many open cases are in each status."""
        return dict(self.conn.execute(select(t.cases.c.status, func.count()).where(t.cases.c.status.in_(OPEN))
                                      .group_by(t.cases.c.status)).all())

    def all(self) -> list[Case]:
        return [_case_from_row(r) for r in self.conn.execute(self._select()).mappings()]

    def due(self, now: datetime, limit: int = 10000) -> list[tuple[str, datetime]]:
        return [tuple(r) for r in self.conn.execute(
            select(t.cases.c.case_id, t.cases.c.next_due_at).where(t.cases.c.status.in_(OPEN), t.cases.c.next_due_at <= now)
            .order_by(t.cases.c.next_due_at).limit(limit)
        )]

    def next_due_instant(self, excluding: list[str] = ()) -> datetime | None:
        query = select(func.min(t.cases.c.next_due_at)).where(t.cases.c.status.in_(OPEN))
        if excluding:
            query = query.where(t.cases.c.case_id.not_in(list(excluding)))
        return self.conn.execute(query).scalar_one_or_none()

    def _select(self):
        d = t.detainers
        detainer_cols = [c.label(f"d_{c.name}") for c in d.c]
        return select(t.cases, *detainer_cols).join(d, d.c.id == t.cases.c.current_detainer_id)

    def insert(self, case: Case, detainer_id: int, policy: Policy, now: datetime) -> None:
        values = _case_values(case, policy, now)
        values.update(case_id=case.case_id, booking_number=case.booking_number, facility=case.facility,
                      opened_at=case.opened_at, a_number=case.detainer.a_number,
                      current_detainer_id=detainer_id, version=1)
        self.conn.execute(insert(t.cases).values(**values))
        case.version = 1

    def for_update(self, case_ids: list[str], skip_locked: bool = True) -> list[tuple[Case, dict[str, Any]]]:
        """The cases (in no particular order) with the state stored for them, read
        to be changed in this transaction. SQLite has one writer at a time (BEGIN
        IMMEDIATE); on PostgreSQL the rows are locked, and with skip_locked a row
        another writer holds is skipped: that writer is changing it and decides
        it, and the next pass finds it if anything is still due."""
        query = self._select().where(t.cases.c.case_id.in_(case_ids))
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update(of=t.cases, skip_locked=skip_locked)
        return [(_case_from_row(r), {name: r[name] for name in SAVED_STATE}) for r in self.conn.execute(query).mappings()]

    def open_with_due_instants(self) -> list[tuple[Case, datetime | None]]:
        """Every open case with the next due instant stored for it."""
        rows = self.conn.execute(self._select().where(t.cases.c.status.in_(OPEN))).mappings()
        return [(_case_from_row(r), r["next_due_at"]) for r in rows]

    def set_next_due(self, case: Case, at: datetime | None) -> bool:
        """Only the derived instant, and only if nobody changed the case since it
        was read; the version stays (nothing about the case itself changed)."""
        return self.conn.execute(update(t.cases).where(t.cases.c.case_id == case.case_id, t.cases.c.version == case.version)
                                 .values(next_due_at=at)).rowcount == 1

    def save_many(self, changes: list[tuple[Case, datetime]], policy: Policy) -> None:
        """Compare-and-set on the version read, for many cases (each with when it
        was decided) in one call: if any changed meanwhile, none is written
        (ConcurrentUpdate)."""
        if not changes:
            return
        rows = [{**_case_values(case, policy, now), "version": case.version + 1, "b_case_id": case.case_id,
                 "b_version": case.version} for case, now in changes]
        result = self.conn.execute(_SAVE_CASE.execution_options(preserve_rowcount=True), rows)
        if result.rowcount != len(changes):
            raise ConcurrentUpdate(", ".join(case.case_id for case, _ in changes))
        for case, _ in changes:
            case.version += 1

    def save(self, case: Case, policy: Policy, now: datetime, detainer_id: int | None = None) -> None:
        """Compare-and-set on the version read: a concurrent writer makes this fail
        instead of silently overwriting its decision."""
        values = _case_values(case, policy, now)
        values["version"] = case.version + 1
        if detainer_id is not None:
            values["current_detainer_id"] = detainer_id
        result = self.conn.execute(
            update(t.cases).where(t.cases.c.case_id == case.case_id, t.cases.c.version == case.version).values(**values)
        )
        if result.rowcount != 1:
            raise ConcurrentUpdate(case.case_id)
        case.version += 1

    def opened_before(self, end: datetime) -> list[Case]:
        return [_case_from_row(r) for r in self.conn.execute(
            self._select().where(t.cases.c.opened_at < end).order_by(t.cases.c.case_id)).mappings()]


_CASE_FIELDS = (
    "status_reason", "release_authorized_at", "release_reason", "t0", "anchor_rule", "deadline_at",
    "release_order_at", "hold_authorized", "hold_started_at", "no_hold_reason", "served_at", "served_by",
    "service_event_id", "copy_served_at", "copy_served_by", "copy_language", "expected_release_at", "lifted_at",
    "release_ordered_at", "release_order_reason", "supervisors_paged_at", "overdue_alerted_at", "released_at",
    "transferred_at", "transferred_to", "closed_at",
)


SAVED_STATE = (*_CASE_FIELDS, "status", "last_reminder_mark_s", "next_due_at")


def saved_state(case: Case, policy: Policy) -> dict[str, Any]:
    """What saving the case would store (comparable with `cases_for_update`'s)."""
    values = _case_values(case, policy, None)
    del values["updated_at"], values["mirror_pending"]  # bookkeeping of the write, not the case's state
    return values


_SAVE_CASE = update(t.cases).where(t.cases.c.case_id == bindparam("b_case_id"), t.cases.c.version == bindparam("b_version"))


def _case_values(case: Case, policy: Policy, now: datetime | None) -> dict[str, Any]:
    values = {name: getattr(case, name) for name in _CASE_FIELDS}
    values["status"] = str(case.status)
    values["last_reminder_mark_s"] = None if case.last_reminder_mark is None else int(case.last_reminder_mark.total_seconds())
    values["next_due_at"] = case.next_due_at(policy) if case.is_open else None
    values["updated_at"] = now
    values["mirror_pending"] = True  # every change is news to the case's run until it has seen it
    return values


def _case_from_row(r: RowMapping) -> Case:
    detainer = Detainer(
        a_number=r["d_a_number"], ice_event_number=r["d_ice_event_number"], form=DetainerForm(r["d_form"]),
        requests_custody=r["d_requests_custody"], issuing_office=r["d_issuing_office"], issued_at=r["d_issued_at"],
        received_at=r["d_received_at"],
        warrant_form=WarrantForm(r["d_warrant_form"]) if r["d_warrant_form"] else None,
        warrant_number=r["d_warrant_number"], identity_verified=r["d_identity_verified"],
        subject_name=r["d_subject_name"], subject_dob=r["d_subject_dob"], event_id=r["d_event_id"])
    values = {name: r[name] for name in _CASE_FIELDS}
    mark = r["last_reminder_mark_s"]
    return Case(case_id=r["case_id"], booking_number=r["booking_number"], facility=r["facility"],
                status=Status(r["status"]), opened_at=r["opened_at"], detainer=detainer, version=r["version"],
                last_reminder_mark=None if mark is None else timedelta(seconds=mark), **values)
