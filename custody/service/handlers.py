"""The service layer: each handler is one unit of work around the case.

An accepted event is written to the inbox in the same transaction as the case
change, its audit entries and its outbox rows: either all of it is durable or
none of it is, and a rejected event leaves every table as it was.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from custody.store.db import DatabaseBusy, contention
from custody.store.unit_of_work import AuditEntry, ConcurrentUpdate, SqlUnitOfWork, saved_state
from models.case import Case
from models.clock import Clock, iso_z
from models.domain import Detainer, Notice, Problem, Service, Status, Transition
from models.events import FUTURE_TOLERANCE, IDENTIFIER, SAME_INSTANT_ORDER, DetainerReceived, EventRejected, parse_event
from models.policy import Policy
from models.roster import parse_roster
from models.rules import service_due_by, service_problems, service_window_end

RETRIES = 8
DUE_PER_PASS = 10000  # due cases one sweep reads at once; the rest come in the next pass, at once
SWEEP_BATCH = 100  # due cases written per transaction (one durable commit)
REFUSED = "refused: "  # an inbox outcome that starts so: a service refused at intake (answered `rejected`)
CASE_LEVEL_TYPES = frozenset({"warrant.served", "detainer.copy_served", "detainer.lifted", "custody.transferred",
                              "notice.acknowledged"})


@dataclass(frozen=True)
class Core:
    """What every handler needs: the database, the policy, and the clock."""
    engine: Engine
    policy: Policy
    clock: Clock
    on_commit: Callable[[str, str], None] | None = None  # (case_id, what) after a commit, e.g. wake the backstop

    def uow(self, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, read_only)


@dataclass(frozen=True)
class Sender:
    name: str
    event_types: frozenset[str] | None = None  # None: may send every type (local operators)


@dataclass
class IngestResult:
    event_id: str | None
    result: str  # accepted | duplicate | rejected
    reason: str | None = None
    case_id: str | None = None
    outcome: str | None = None
    type: str | None = field(default=None, repr=False, compare=False)  # the event's type, for on_commit

    def line(self, where: str = "?") -> str:
        label = self.event_id or where
        if self.result == "rejected":
            return f"{label}: rejected: {self.reason}"
        tail = f" ({self.case_id})" if self.case_id else ""
        return f"{label}: {self.result}{tail}"

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and k != "type"}


def canonical(raw: Any) -> str:
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- intake ------------------------------------------------------------------------

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
            return IngestResult(prepared.event.event_id, "rejected", str(exc))
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
    cases = {case.case_id: case for booking in bookings for case in uow.cases_for_booking(booking)}
    for case_id in last_event:
        if case_id not in cases:  # a case of this person at another booking (rule 11)
            found = uow.case_get(case_id)
            if found is not None:
                cases[case_id] = found
    for case in cases.values():
        if not case.is_open:
            continue
        event_id, result = last_event.get(case.case_id, (None, None))
        savepoint = uow.savepoint()
        try:
            _advance(uow, core.policy, case, now)
            if not case.effects:
                savepoint.rollback()
                continue
            said = _persist(uow, core.policy, case, now, bookings.get(case.booking_number, "backstop"), event_id)
            savepoint.commit()
        except (ConcurrentUpdate, IntegrityError):  # another writer (a backstop) advanced it first: it decides
            savepoint.rollback()
            continue
        if result is not None and result.result == "accepted":
            result.outcome = f"{result.outcome}; {said}" if result.outcome else said
            uow.inbox_set_outcome(event_id, case.case_id, result.outcome)


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
            return IngestResult(prepared.event.event_id, "rejected", str(exc))
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
        return IngestResult(event_id, "rejected", str(exc))
    if event.facility is None:
        event = event.model_copy(update={"facility": core.policy.single_facility})
    return _Prepared(event, raw, hashlib.sha256(canonical(raw).encode()).hexdigest(), sender)


def _store(uow: SqlUnitOfWork, core: Core, p: _Prepared, now: datetime, timers: bool = True) -> IngestResult:
    """The inbox row and everything the event does, inside the caller's transaction.
    `timers`: advance the case to `now` afterwards (False: the caller does it once
    the other facts that arrived with this one are applied)."""
    event = p.event
    existing = uow.inbox_get(event.event_id)
    if existing is not None:
        if existing["body_sha256"] != p.body_hash:
            return IngestResult(event.event_id, "rejected", "event_id: already used by a different event")
        if existing["outcome"].startswith(REFUSED):  # the decision stands: the same answer again
            return IngestResult(event.event_id, "rejected", existing["outcome"].removeprefix(REFUSED), case_id=existing["case_id"])
        return IngestResult(event.event_id, "duplicate", case_id=existing["case_id"])
    if not uow.inbox_add(
        event_id=event.event_id, type=event.type, booking_number=event.booking_number,
        facility=event.facility, occurred_at=event.occurred_at, received_at=now, sender=p.sender.name,
        body=json.dumps(p.raw, ensure_ascii=False), body_sha256=p.body_hash, case_id=None, outcome="",
    ):
        raise _StoredMeanwhile(event.event_id)
    case_id, outcome, refusal = _apply(uow, core.policy, event, now, _actor(p.sender, event), timers)
    if refusal is not None:
        uow.inbox_set_outcome(event.event_id, case_id, REFUSED + str(refusal))
        return IngestResult(event.event_id, "rejected", str(refusal), case_id=case_id, type=event.type)
    uow.inbox_set_outcome(event.event_id, case_id, outcome)
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
        raise EventRejected("type", f"sender {sender.name!r} may not send {event.type!r} events")
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
    booking = uow.booking_touch(event.booking_number, event.facility, now)
    if isinstance(event, DetainerReceived):
        return (*_detainer_received(uow, policy, event, now, actor, timers), None)
    if event.type == "release.authorized" and (booking["release_authorized_at"] is None or event.occurred_at < booking["release_authorized_at"]):
        # T0 is the earliest moment the person would otherwise have gone free.
        uow.booking_update(event.booking_number, release_authorized_at=event.occurred_at, release_reason=str(event.reason))
    elif event.type == "inmate.released" and booking["released_at"] is None:
        uow.booking_update(event.booking_number, released_at=event.occurred_at)
    elif event.type == "release.scheduled":
        uow.booking_update(event.booking_number, expected_release_at=event.expected_release_at)

    case = uow.case_open_for(event.booking_number) or uow.case_latest_for_booking(event.booking_number)
    if case is None:
        return None, "kept: no case for this booking yet; it applies when a detainer arrives", None
    refusal = _apply_to_case(uow, policy, case, event, now, replay=False)
    if timers:
        _advance(uow, policy, case, now)
    if event.type == "release.authorized":
        _correct_other_cases(uow, policy, case.case_id, event, now, actor, timers)
    return case.case_id, _persist(uow, policy, case, now, actor, event.event_id), refusal


def _advance(uow: SqlUnitOfWork, policy: Policy, case: Case, now: datetime) -> None:
    """Fire what is due at `now`, knowing how far the officers' reports have been read."""
    case.advance(now, policy, reports_read_through(uow, [case], now, policy).get(case.case_id))


def reports_read_through(uow: SqlUnitOfWork, cases: list[Case], now: datetime, policy: Policy) -> dict[str, datetime]:
    """For each case whose service window has closed by `now` and whose officer
    can report through its run's form in the Prefect UI: the instant through
    which those reports have been read into the database (docs/rules.md, rule 6).
    A case with no run has no form, so no report of it can wait outside."""
    closed = [case.case_id for case in cases if case.status is Status.RELEASE_AUTHORIZED
              and case.release_authorized_at is not None and now >= service_due_by(case.release_authorized_at, policy)]
    return uow.reports_read_through(closed) if closed else {}


def _correct_other_cases(uow: SqlUnitOfWork, policy: Policy, done: str, event: Any, now: datetime, actor: str,
                         timers: bool) -> None:
    """T0 is a fact of the booking: an earlier release time corrects every case
    of this booking that anchored on a later one, not only the current case."""
    for other in uow.cases_for_booking(event.booking_number):
        if other.case_id != done and other.release_authorized_at is not None and event.occurred_at < other.release_authorized_at:
            other.authorize_release(event.occurred_at, str(event.reason), policy, now)
            if timers:
                _advance(uow, policy, other, now)
            _persist(uow, policy, other, now, actor, event.event_id)


def _apply_to_case(uow: SqlUnitOfWork, policy: Policy, case: Case, event: Any, now: datetime, *,
                   replay: bool) -> Problem | None:
    """Apply one fact to the case. A service refused at intake is recorded as
    refused and its first problem returned: the sender hears why at once and can
    correct it, and the attempt stays on the case's record."""
    kind = event.type
    if kind == "release.authorized":
        case.authorize_release(event.occurred_at, str(event.reason), policy, now)
    elif kind == "inmate.released":
        case.confirm_release(event.occurred_at, event.released_by, policy, now)
    elif kind == "release.scheduled":
        case.schedule_release(event.expected_release_at, policy, now)
    elif kind == "detainer.copy_served":
        case.record_copy_served(event.occurred_at, event.served_by, event.language)
    elif kind == "detainer.lifted":
        case.lift(event.occurred_at, event.lifted_by, event.note, now)
    elif kind == "custody.transferred":
        case.transfer(event.occurred_at, event.agency, event.officer_name, policy, now)
    elif kind == "notice.acknowledged":
        # Clocks differ by a little: an acknowledgement may carry a time up to the
        # tolerance intake allows for the future before the notice was queued.
        count = uow.outbox_acknowledge(case.case_id, event.notice, event.occurred_at, event.acknowledged_by,
                                       queued_by=event.occurred_at + FUTURE_TOLERANCE)
        if count == 0 and not replay:
            queued = uow.first_unacknowledged_queued_at(case.case_id, event.notice)
            if queued is not None:
                raise EventRejected("occurred_at", f"{iso_z(event.occurred_at)} is before the {event.notice!r} notice to ICE "
                                    f"it would acknowledge was queued ({iso_z(queued)})")
            raise EventRejected("notice", f"no unacknowledged {event.notice!r} notice to ICE is on file for this case")
        case.effects.append(Transition("notice_acknowledged", case.status, case.status,
                                       f"ICE acknowledged the {event.notice} notice ({event.acknowledged_by})"))
    elif kind == "warrant.served":
        service = Service(event.officer_badge, event.warrant_number, event.location, event.occurred_at, event.event_id)
        problems = service_problems(service, roster=uow.roster_entries(event.officer_badge),
                                    warrant_number=case.detainer.warrant_number, booked_facility=case.facility, policy=policy)
        case.record_service(service, problems, policy, now)
        if problems and case.is_open and not replay:
            return problems[0]
    else:  # pragma: no cover - parse_event admits no other type
        raise AssertionError(kind)
    return None


def _detainer_received(uow: SqlUnitOfWork, policy: Policy, event: DetainerReceived, now: datetime, actor: str,
                       timers: bool = True) -> tuple[str, str]:
    d = event.detainer
    detainer = Detainer(
        a_number=d.a_number, ice_event_number=d.ice_event_number, form=d.form, requests_custody=d.requests_custody,
        issuing_office=d.issuing_office, issued_at=d.issued_at, received_at=event.occurred_at,
        warrant_form=event.warrant.form if event.warrant else None,
        warrant_number=event.warrant.number if event.warrant else None,
        identity_verified=event.subject.identity_verified, subject_name=event.subject.name,
        subject_dob=event.subject.dob, event_id=event.event_id)

    known = uow.detainer_find(d.a_number, d.ice_event_number)
    if known is not None:
        case = uow.case_get(known["case_id"])
        case.effects.append(Transition("detainer_repeated", case.status, case.status,
                                       f"the same detainer (A-number and ICE event {d.ice_event_number}) sent again; merged"))
        if timers:
            _advance(uow, policy, case, now)
        return case.case_id, _persist(uow, policy, case, now, actor, event.event_id)

    uow.lock_person(d.a_number)
    case = uow.case_open_for(event.booking_number, d.a_number)
    if case is not None:
        detainer_id = uow.detainer_add(case.case_id, detainer)
        governs = case.status is Status.AWAITING_RELEASE
        case.merge_detainer(detainer)
        if timers:
            _advance(uow, policy, case, now)
        return case.case_id, _persist(uow, policy, case, now, actor, event.event_id, detainer_id if governs else None)

    year = policy.local(event.occurred_at).year
    case = Case.open(uow.next_case_id(year), event.booking_number, event.facility, detainer, policy)
    detainer_id = uow.detainer_add(case.case_id, detainer)
    uow.case_insert(case, detainer_id, policy, now)
    _catch_up(uow, policy, case, event, now)
    if timers:
        _advance(uow, policy, case, now)
    return case.case_id, _persist(uow, policy, case, now, actor, event.event_id)


def _catch_up(uow: SqlUnitOfWork, policy: Policy, case: Case, event: DetainerReceived, now: datetime) -> None:
    """Apply what the jail told us about this booking before the detainer came,
    in the order it happened: the release state from the booking, then the
    case-level events that were kept waiting for a case."""
    booking = uow.booking_get(case.booking_number)
    released_at = booking["released_at"]
    pending = [row for row in uow.inbox_pending(case.booking_number) if row["event_id"] != event.event_id]
    for row in pending:
        uow.inbox_set_outcome(row["event_id"], case.case_id, (row["outcome"] + "; " if row["outcome"] else "") + f"applied to {case.case_id} when the detainer arrived")
    if released_at is not None and released_at <= event.occurred_at:
        case.close_already_released(released_at, now)
        return
    # Facts of one instant go in the order a batch of events applies them (SAME_INSTANT_ORDER).
    order = SAME_INSTANT_ORDER
    steps: list[tuple[datetime, int, Callable[[], None]]] = []
    if booking["release_authorized_at"] is not None:
        steps.append((booking["release_authorized_at"], order["release.authorized"], lambda: case.authorize_release(
            booking["release_authorized_at"], booking["release_reason"] or "other", policy, now)))
    if booking["expected_release_at"] is not None:
        steps.append((booking["expected_release_at"], order["release.scheduled"], lambda: case.schedule_release(booking["expected_release_at"], policy, now)))
    if released_at is not None:
        steps.append((released_at, order["inmate.released"], lambda: case.confirm_release(released_at, "the jail's records (before the detainer arrived)", policy, now)))
    for row in pending:
        if row["type"] in CASE_LEVEL_TYPES:
            kept = parse_event(json.loads(row["body"]), now=None)
            if kept.facility is None:
                kept = kept.model_copy(update={"facility": case.facility})
            steps.append((row["occurred_at"], order[kept.type], lambda kept=kept: _apply_to_case(uow, policy, case, kept, now, replay=True)))
    for _, _, step in sorted(steps, key=lambda s: (s[0], s[1])):
        step()


def _persist(uow: SqlUnitOfWork, policy: Policy, case: Case, now: datetime, actor: str,
             source_event_id: str | None, detainer_id: int | None = None) -> str:
    effects = case.drain_effects()
    uow.case_save(case, policy, now, detainer_id)
    _record_effects(uow, policy, [(case, effects, now)], actor, source_event_id)
    said = [effect.action if effect.status_before == effect.status_after
            else f"{effect.action} ({effect.status_before or 'new'} -> {effect.status_after})"
            for effect in effects if isinstance(effect, Transition)]
    return "; ".join(said) or "recorded"


def _record_effects(uow: SqlUnitOfWork, policy: Policy, changed: list[tuple[Case, list[Transition | Notice], datetime]],
                    actor: str, source_event_id: str | None) -> None:
    """The audit entries and outbox rows of saved cases (each with the instant
    it was decided at), in order, each kind in one call."""
    uow.audit_add_many([AuditEntry(case.case_id, now, actor, source_event_id, effect)
                        for case, effects, now in changed for effect in effects if isinstance(effect, Transition)])
    uow.outbox_add_many([(case, effect, now) for case, effects, now in changed for effect in effects if isinstance(effect, Notice)],
                        policy)


# --- the deadline backstop ------------------------------------------------------------

@dataclass
class SweepAction:
    case_id: str
    booking_number: str
    action: str
    status_before: str | None
    status_after: str | None
    reason: str
    deadline_at: str | None


@dataclass
class SweepReport:
    started_at: datetime
    examined: int = 0
    actions: list[SweepAction] = field(default_factory=list)
    next_due_at: datetime | None = None
    truncated: bool = False  # more cases were due than one pass reads: go again at once
    not_advanced: list[str] = field(default_factory=list)  # every attempt at their batch failed (other writers, errors)
    # Due cases whose service window has closed but whose officers' reports in the
    # Prefect UI are not all read yet, and the earliest instant one of them is decided
    # without them (rule 6's report_wait); the reports' reader pokes the backstop sooner.
    awaiting_reports: list[str] = field(default_factory=list)
    reports_awaited_until: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"started_at": iso_z(self.started_at), "examined": self.examined,
                "actions": [a.__dict__ for a in self.actions], "next_due_at": iso_z(self.next_due_at),
                "not_advanced": self.not_advanced, "reports_awaited_until": iso_z(self.reports_awaited_until)}


def sweep(core: Core, actor: str = "backstop") -> SweepReport:
    """One pass of the deadline backstop, from the database alone."""
    report = SweepReport(core.clock.now())
    return _pass(core, report, due_cases(core, report.started_at), actor)


def sweep_prepared(core: Core, at: datetime, until: Callable[[datetime], bool], horizon: timedelta = timedelta(0),
                   actor: str = "backstop") -> SweepReport | None:
    """The pass for what falls due from the instant `at` to `at + horizon`,
    prepared just before `at`, so each release order is decided at its own
    instant rather than a few queries (and another order's commit) later.

    In one transaction: list and read the cases due by then (no other writer
    can change them meanwhile: SQLite has one writer at a time, PostgreSQL
    locks the rows); for each due instant in order, wait for it (`until(t)`)
    and decide the cases due then at the clock's time; write them all and
    commit once. If `until` gives up (poked, or the clock does not get there)
    at the first instant, or another writer's lock outlasts the wait, nothing
    is written and None is returned; at a later instant, what was decided is
    written and the rest is left to the next pass."""
    report = SweepReport(at)
    try:
        with core.uow() as uow:
            due = uow.due_cases(at + horizon, SWEEP_BATCH)
            report.truncated = len(due) >= SWEEP_BATCH  # the rest in a pass at once
            groups: dict[datetime, list[str]] = {}
            for case_id, due_at in due:
                groups.setdefault(max(due_at, at), []).append(case_id)
            report.actions = _advance_batch(uow, core, [(lambda t=t: until(t), ids) for t, ids in groups.items()], actor,
                                            report=report)
            report.examined = len(due)
            uow.commit()
    except _GaveUp:
        return None
    except OperationalError as exc:
        if contention(exc) is None:
            raise
        # Another writer held a lock past the wait: the full pass that follows at once
        # decides these cases (and retries shortly if the lock is still held), where
        # a failed pass would wait the loop's error backoff with a release order due.
        return None
    with core.uow(read_only=True) as uow:
        report.next_due_at = _next_due(uow, report)
    return report


def _next_due(uow: SqlUnitOfWork, report: SweepReport) -> datetime | None:
    """The next instant a pass has work. A window waiting for its officers'
    reports is due again when it is decided without them (their reader pokes
    the backstop sooner), not at its close, which has passed: so the backstop
    meanwhile still prepares for each other case's instant."""
    if not report.awaiting_reports:
        return uow.next_due_instant()
    others = uow.next_due_instant(excluding=report.awaiting_reports)
    return min(at for at in (others, report.reports_awaited_until) if at is not None)


class _GaveUp(Exception):
    pass


def _pass(core: Core, report: SweepReport, due: list[tuple[str, datetime]], actor: str) -> SweepReport:
    report.truncated = len(due) >= DUE_PER_PASS
    advance_cases(core, due, actor, report)
    with core.uow(read_only=True) as uow:
        report.next_due_at = _next_due(uow, report)
    return report


def due_cases(core: Core, now: datetime) -> list[tuple[str, datetime]]:
    with core.uow(read_only=True) as uow:
        return uow.due_cases(now, DUE_PER_PASS)


def advance_cases(core: Core, due: list[tuple[str, datetime]], actor: str, report: SweepReport,
                  skip_locked: bool = True) -> None:
    """Advance the due cases (as `due_cases` lists them) under compare-and-set.

    Cases due together are decided and written together, up to SWEEP_BATCH per
    transaction: a thousand release orders due in one pass cost ten durable
    commits, not a thousand, and no order waits behind another's commit. Each
    case is re-read inside the transaction, and one that needs nothing (another
    sweep gave its order first) is not written at all, so two sweeps at once do
    each thing once; if another writer changed a case between the read and the
    write, the whole batch is rolled back and decided again from a fresh read.
    On PostgreSQL a case another sweep holds is skipped (skip_locked): that
    sweep decides it; a hold step passes skip_locked=False to wait for it and
    then find its step done."""
    ids = [case_id for case_id, _ in due]
    for first in range(0, len(ids), SWEEP_BATCH):
        batch = ids[first:first + SWEEP_BATCH]
        report.examined += len(batch)
        for _ in range(RETRIES):
            try:
                with core.uow() as uow:
                    actions = _advance_batch(uow, core, [(None, batch)], actor, skip_locked, report)
                    uow.commit()
                report.actions += actions
                break
            except (ConcurrentUpdate, OperationalError):
                continue
        else:  # said, not hidden: the next pass (the backstop's own soon after) tries them again
            report.not_advanced += batch


def _advance_batch(uow: SqlUnitOfWork, core: Core, groups: list[tuple[Callable[[], bool] | None, list[str]]],
                   actor: str, skip_locked: bool = True, report: SweepReport | None = None) -> list[SweepAction]:
    """Decide groups of cases in order, each when its `until()` allows (None:
    at once), at the clock's time then; write what changed."""
    found = {case.case_id: (case, stored)
             for case, stored in uow.cases_for_update([i for _, ids in groups for i in ids], skip_locked)}
    changed: list[tuple[Case, list[Transition | Notice], datetime]] = []
    for n, (until, case_ids) in enumerate(groups):
        if until is not None and not until():
            if n == 0:
                raise _GaveUp
            break
        now = core.clock.now()
        reports = reports_read_through(uow, [found[i][0] for i in case_ids if i in found], now, core.policy)
        for case_id in case_ids:
            case, stored = found.get(case_id, (None, None))
            if case is None or not case.is_open:
                continue
            case.advance(now, core.policy, reports.get(case_id))
            if case_id in reports and case.status is Status.RELEASE_AUTHORIZED and report is not None:
                end = service_window_end(service_due_by(case.release_authorized_at, core.policy), reports[case_id], core.policy)
                report.reports_awaited_until = min(filter(None, (report.reports_awaited_until, end)))
                report.awaiting_reports.append(case_id)
            if not case.effects and saved_state(case, core.policy) == stored:
                continue  # nothing was due after all (another sweep did it): write nothing
            changed.append((case, case.drain_effects(), now))
    uow.cases_save([(case, now) for case, _, now in changed], core.policy)
    _record_effects(uow, core.policy, changed, actor, None)
    return [SweepAction(case.case_id, case.booking_number, effect.action,
                        effect.status_before and str(effect.status_before), effect.status_after and str(effect.status_after),
                        effect.reason, iso_z(case.deadline_at))
            for case, effects, _ in changed for effect in effects if isinstance(effect, Transition)]


# --- the roster --------------------------------------------------------------------------

def load_roster(core: Core, text: str, *, source: str, actor: str) -> dict[str, list[str]]:
    entries = parse_roster(text, core.policy)  # raises RosterError naming line and field
    with core.uow() as uow:
        changes = uow.roster_replace(entries, now=core.clock.now(), actor=actor, source=source,
                                     file_sha256=hashlib.sha256(text.encode()).hexdigest())
        uow.audit_add(case_id=None, at=core.clock.now(), actor=actor, source_event_id=None, transition=Transition(
            "roster_loaded", None, None,
            f"{len(entries)} officers from {source}: " + ", ".join(f"{k} {len(v)}" for k, v in changes.items())))
        uow.commit()
    return changes


# --- operations alerts ---------------------------------------------------------------------

def raise_operations_alert(core: Core, *, what: str, subject: str, detail: str, dedupe: str) -> int:
    """Tell supervisors and the sheriff that the machinery itself is in trouble
    (a backstop or deadline run failed, crashed, ran late or went silent).
    `dedupe` makes the same incident one notification however often it is raised."""
    now = core.clock.now()
    body = (f"{detail}\nThe database backstop in `custody up` keeps ordering releases on time; "
            f"check the Prefect UI and the custody logs.")
    with core.uow() as uow:
        added = uow.outbox_add_alert(key=f"ops:{dedupe}", kind=f"ops-{what}", groups=("supervisors", "sheriff"),
                                     urgency="urgent", subject=f"URGENT custody: {subject}"[:300], body=body, now=now)
        uow.audit_add(case_id=None, at=now, actor="automation", source_event_id=None,
                      transition=Transition("operations_alert", None, None, f"{subject}: {detail}"))
        uow.commit()
    return added
