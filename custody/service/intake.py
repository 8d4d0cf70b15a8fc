"""Intake: events in, each stored before anything else happens.

An accepted event is written to the inbox in the same transaction as the case
change, its audit entries and its outbox rows: either all of it is durable or
none of it is, and a rejected event leaves every table as it was. What each
event does to its case is custody/service/case_events.py; a detainer,
custody/service/detainers.py; how it is validated, models/events.py.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

from custody.service.case_events import apply_to_case
from custody.service.core import RETRIES, Core, Sender
from custody.service.detainers import detainer_received
from custody.service.recording import advance, persist
from custody.store.db import DatabaseBusy, contention
from custody.store.repositories.cases import ConcurrentUpdate
from custody.store.unit_of_work import SqlUnitOfWork
from models.domain import Problem
from models.events import IDENTIFIER, SAME_INSTANT_ORDER, DetainerReceived, EventRejected, Refusal, parse_event
from models.policy import Policy

REFUSED = "refused: "  # an inbox outcome that starts so: a service refused at intake (answered `rejected`)


@dataclass
class IngestResult:
    event_id: str | None
    result: str  # accepted | duplicate | rejected
    reason: str | None = None
    case_id: str | None = None
    outcome: str | None = None
    type: str | None = field(default=None, repr=False, compare=False)  # the event's type, for on_commit
    refusal: Refusal = field(default=Refusal.INVALID, repr=False, compare=False)  # of a rejection: its kind

    def line(self, where: str = "?") -> str:
        label = self.event_id or where
        if self.result == "rejected":
            return f"{label}: rejected: {self.reason}"
        tail = f" ({self.case_id})" if self.case_id else ""
        return f"{label}: {self.result}{tail}"

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and k not in ("type", "refusal")}


def canonical(raw: Any) -> str:
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def ingest(core: Core, raw: Any, sender: Sender) -> IngestResult:
    now = core.clock.now()
    prepared = _prepare(core, raw, sender, now)
    if isinstance(prepared, IngestResult):
        return prepared
    for _ in range(RETRIES):
        try:
            with core.uow() as uow:
                result = _store(uow, core, prepared, now)
                uow.commit()
            _tell(core, [result])
            return result
        except EventRejected as exc:
            return IngestResult(prepared.event.event_id, "rejected", str(exc), refusal=exc.code)
        except (ConcurrentUpdate, IntegrityError, _StoredMeanwhile):
            continue
        except OperationalError as exc:
            _retry_or_busy(exc)
    raise DatabaseBusy(f"event {prepared.event.event_id}: could not be stored after {RETRIES} attempts under contention")


def _retry_or_busy(exc: OperationalError) -> None:
    """A lock conflict the database resolved against this transaction (rolled
    back: nothing stored) is tried again; a lock wait that ran out is the
    caller's to retry later (DatabaseBusy); any other error is not contention."""
    kind = contention(exc)
    if kind == "wait":
        raise DatabaseBusy("the database is busy with another writer; nothing was stored") from exc
    if kind is None:
        raise exc


def ingest_many(core: Core, raws: list[Any], sender: Sender) -> list[IngestResult]:
    """A batch of events (one POST /events array, a file of `custody ingest`) in
    one transaction. Facts that arrive together are applied in the order they
    happened (by `occurred_at`; facts of one instant in SAME_INSTANT_ORDER, then
    in the batch's order), each in its
    own savepoint and decided as `ingest` would decide it alone (a rejected one
    changes nothing, but a refused service stays on its case's record), and
    only then does any timer fire: a release authorisation
    and the service that followed it, arriving in one backlog, are judged
    together, as they would have been had each come at its own time. The
    accepted ones become durable together, with one commit, before any result
    is returned; the results are in the batch's order."""
    now = core.clock.now()
    results: list[IngestResult | None] = []
    todo: list[tuple[int, _Prepared]] = []
    for i, raw in enumerate(raws):
        prepared = _prepare(core, raw, sender, now)
        results.append(prepared if isinstance(prepared, IngestResult) else None)
        if not isinstance(prepared, IngestResult):
            todo.append((i, prepared))
    todo.sort(key=lambda item: (item[1].event.occurred_at, SAME_INSTANT_ORDER[item[1].event.type], item[0]))
    for _ in range(RETRIES):
        try:
            staged: dict[int, IngestResult] = {}
            with core.uow() as uow:
                for i, prepared in todo:
                    staged[i] = _store_in_savepoint(uow, core, prepared, now, timers=False)
                _fire_timers(uow, core, [(prepared, staged[i]) for i, prepared in todo], now)
                uow.commit()
            break
        except OperationalError as exc:
            _retry_or_busy(exc)
    else:
        raise DatabaseBusy(f"a batch of {len(raws)} events could not be stored after {RETRIES} attempts under contention")
    for i, result in staged.items():
        results[i] = result
    _tell(core, [staged[i] for i in sorted(staged)])
    return results


def _fire_timers(uow: SqlUnitOfWork, core: Core, applied: list[tuple["_Prepared", IngestResult]], now: datetime) -> None:
    """After a batch's facts: advance to `now` every open case they touched (and
    the other cases of their bookings, which a corrected T0 may have moved). What
    fires is recorded as caused by the last of the batch's events about the case."""
    last_event: dict[str, tuple[str, IngestResult]] = {}
    bookings: dict[str, str] = {}
    for prepared, result in applied:
        if result.case_id and result.result != "duplicate":
            last_event[result.case_id] = (prepared.event.event_id, result)
            bookings[prepared.event.booking_number] = _actor(prepared.sender, prepared.event)
    cases = {case.case_id: case for booking in bookings for case in uow.cases.for_booking(booking)}
    for case_id in last_event:
        if case_id not in cases:  # a case of this person at another booking (rule 11)
            found = uow.cases.get(case_id)
            if found is not None:
                cases[case_id] = found
    for case in cases.values():
        if not case.is_open:
            continue
        event_id, result = last_event.get(case.case_id, (None, None))
        savepoint = uow.savepoint()
        try:
            advance(uow, core.policy, case, now)
            if not case.effects:
                savepoint.rollback()
                continue
            said = persist(uow, core.policy, case, now, bookings.get(case.booking_number, "backstop"), event_id)
            savepoint.commit()
        except (ConcurrentUpdate, IntegrityError):  # another writer (a backstop) advanced it first: it decides
            savepoint.rollback()
            continue
        if result is not None and result.result == "accepted":
            result.outcome = f"{result.outcome}; {said}" if result.outcome else said
            uow.inbox.set_outcome(event_id, case.case_id, result.outcome)


def _store_in_savepoint(uow: SqlUnitOfWork, core: Core, prepared: "_Prepared", now: datetime,
                        timers: bool = True) -> IngestResult:
    for _ in range(RETRIES):
        savepoint = uow.savepoint()
        try:
            result = _store(uow, core, prepared, now, timers)
            savepoint.commit()
            return result
        except EventRejected as exc:
            savepoint.rollback()
            return IngestResult(prepared.event.event_id, "rejected", str(exc), refusal=exc.code)
        except (ConcurrentUpdate, IntegrityError, _StoredMeanwhile):
            savepoint.rollback()  # another writer got there first: decide again on what it wrote
    raise DatabaseBusy(f"event {prepared.event.event_id}: could not be stored after {RETRIES} attempts under contention")


@dataclass(frozen=True)
class _Prepared:
    event: Any
    raw: Any
    body_hash: str
    sender: Sender


class _StoredMeanwhile(Exception):
    """A concurrent writer stored the same event id first: read it again."""


def _prepare(core: Core, raw: Any, sender: Sender, now: datetime) -> "_Prepared | IngestResult":
    """Validation that needs no database: the event itself, its sender, its facility."""
    event_id = echoable_id(raw)
    try:
        event = parse_event(raw, now)
        _check_sender_and_facility(event, sender, core.policy)
    except EventRejected as exc:
        return IngestResult(event_id, "rejected", str(exc), refusal=exc.code)
    if event.facility is None:
        event = event.model_copy(update={"facility": core.policy.single_facility})
    return _Prepared(event, raw, hashlib.sha256(canonical(raw).encode()).hexdigest(), sender)


def _store(uow: SqlUnitOfWork, core: Core, p: _Prepared, now: datetime, timers: bool = True) -> IngestResult:
    """The inbox row and everything the event does, inside the caller's transaction.
    `timers`: advance the case to `now` afterwards (False: the caller does it once
    the other facts that arrived with this one are applied)."""
    event = p.event
    existing = uow.inbox.get(event.event_id)
    if existing is not None:
        if existing["body_sha256"] != p.body_hash:
            return IngestResult(event.event_id, "rejected", "event_id: already used by a different event", refusal=Refusal.CONFLICT)
        if existing["outcome"].startswith(REFUSED):  # the decision stands: the same answer again
            return IngestResult(event.event_id, "rejected", existing["outcome"].removeprefix(REFUSED), case_id=existing["case_id"])
        return IngestResult(event.event_id, "duplicate", case_id=existing["case_id"])
    if not uow.inbox.add(
        event_id=event.event_id, type=event.type, booking_number=event.booking_number,
        facility=event.facility, occurred_at=event.occurred_at, received_at=now, sender=p.sender.name,
        body=json.dumps(p.raw, ensure_ascii=False), body_sha256=p.body_hash, case_id=None, outcome="",
    ):
        raise _StoredMeanwhile(event.event_id)
    case_id, outcome, refusal = _apply(uow, core.policy, event, now, _actor(p.sender, event), timers)
    if refusal is not None:
        uow.inbox.set_outcome(event.event_id, case_id, REFUSED + str(refusal))
        return IngestResult(event.event_id, "rejected", str(refusal), case_id=case_id, type=event.type)
    uow.inbox.set_outcome(event.event_id, case_id, outcome)
    return IngestResult(event.event_id, "accepted", case_id=case_id, outcome=outcome, type=event.type)


def _tell(core: Core, results) -> None:
    """After the commit: wake whoever follows the cases (the backstop, Prefect)."""
    if core.on_commit:
        for result in results:
            if result.case_id and result.result != "duplicate":  # accepted, or a refused service recorded
                core.on_commit(result.case_id, result.type)


def echoable_id(raw: Any) -> str | None:
    """A rejection names the event by its id only when the id is one: a
    megabyte of text, or a lone surrogate that no UTF-8 output can carry, is
    not echoed back (the result then names the line or the position instead)."""
    value = raw.get("event_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and IDENTIFIER.fullmatch(value) else None


def _check_sender_and_facility(event: Any, sender: Sender, policy: Policy) -> None:
    if sender.event_types is not None and event.type not in sender.event_types:
        raise EventRejected("type", f"sender {sender.name!r} may not send {event.type!r} events", Refusal.NOT_PERMITTED)
    if event.facility is None:
        if policy.single_facility is None:
            raise EventRejected("facility", f"is required: this deployment has several facilities ({', '.join(policy.facilities)})")
    elif not policy.has_facility(event.facility):
        raise EventRejected("facility", f"{event.facility!r} is not one of this jail's facilities ({', '.join(policy.facilities)})")


_PERSON_FIELDS = ("officer_badge", "served_by", "lifted_by", "released_by", "officer_name", "acknowledged_by")


def _actor(sender: Sender, event: Any) -> str:
    for name in _PERSON_FIELDS:
        person = getattr(event, name, None)
        if person:
            return f"{sender.name}:{person}"[:128]
    return sender.name


def _apply(uow: SqlUnitOfWork, policy: Policy, event: Any, now: datetime, actor: str,
           timers: bool = True) -> tuple[str | None, str, Problem | None]:
    """(case id, what it did, the problem that refused it if it is a refused service)."""
    booking = uow.bookings.touch(event.booking_number, event.facility, now)
    if isinstance(event, DetainerReceived):
        return (*detainer_received(uow, policy, event, now, actor, timers), None)
    if event.type == "release.authorized" and (booking["release_authorized_at"] is None or event.occurred_at < booking["release_authorized_at"]):
        # T0 is the earliest moment the person would otherwise have gone free.
        uow.bookings.update(event.booking_number, release_authorized_at=event.occurred_at, release_reason=str(event.reason))
    elif event.type == "inmate.released" and booking["released_at"] is None:
        uow.bookings.update(event.booking_number, released_at=event.occurred_at)
    elif event.type == "release.scheduled":
        uow.bookings.update(event.booking_number, expected_release_at=event.expected_release_at)

    case = uow.cases.open_for(event.booking_number) or uow.cases.latest_for_booking(event.booking_number)
    if case is None:
        return None, "kept: no case for this booking yet; it applies when a detainer arrives", None
    refusal = apply_to_case(uow, policy, case, event, now, replay=False)
    if timers:
        advance(uow, policy, case, now)
    if event.type == "release.authorized":
        _correct_other_cases(uow, policy, case.case_id, event, now, actor, timers)
    return case.case_id, persist(uow, policy, case, now, actor, event.event_id), refusal


def _correct_other_cases(uow: SqlUnitOfWork, policy: Policy, done: str, event: Any, now: datetime, actor: str,
                         timers: bool) -> None:
    """T0 is a fact of the booking: an earlier release time corrects every case
    of this booking that anchored on a later one, not only the current case."""
    for other in uow.cases.for_booking(event.booking_number):
        if other.case_id != done and other.release_authorized_at is not None and event.occurred_at < other.release_authorized_at:
            other.authorize_release(event.occurred_at, str(event.reason), policy, now)
            if timers:
                advance(uow, policy, other, now)
            persist(uow, policy, other, now, actor, event.event_id)
