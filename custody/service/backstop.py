"""The deadline backstop: from the database alone, every case whose instant has
come is advanced (a release order, a reminder, a page), decided at its instant,
in batches under compare-and-set, so two backstops at once do each thing once."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy.exc import OperationalError

from custody.service.core import RETRIES, Core
from custody.service.recording import record_effects, reports_read_through
from custody.store.db import contention
from custody.store.repositories.cases import ConcurrentUpdate, saved_state
from custody.store.unit_of_work import SqlUnitOfWork
from models.case import Case
from models.clock import iso_z
from models.domain import Notice, Status, Transition
from models.rules import service_due_by, service_window_end

DUE_PER_PASS = 10000  # due cases one sweep reads at once; the rest come in the next pass, at once
SWEEP_BATCH = 100  # due cases written per transaction (one durable commit)


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


def refresh_due_instants(core: Core) -> int:
    """Each open case's next due instant as the code and policy in force derive
    it. The backstop finds a case by the instant stored with it, computed by
    whatever code and policy last saved the case; after an upgrade or a policy
    change (the desk's allowance, the reminder marks, the lead) it may be later
    than what is due now. Run before the backstop's first pass; returns how many
    instants were corrected."""
    with core.uow(read_only=True) as uow:  # nearly always nothing is stale: no write, no lock taken
        derived = [(case, case.next_due_at(core.policy), stored) for case, stored in uow.cases.open_with_due_instants()]
    stale = [(case, due) for case, due, stored in derived if due != stored]
    if not stale:
        return 0
    with core.uow() as uow:
        corrected = sum(uow.cases.set_next_due(case, due) for case, due in stale)
        uow.commit()
    return corrected


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
            due = uow.cases.due(at + horizon, SWEEP_BATCH)
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
        return uow.cases.next_due_instant()
    others = uow.cases.next_due_instant(excluding=report.awaiting_reports)
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
        return uow.cases.due(now, DUE_PER_PASS)


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
             for case, stored in uow.cases.for_update([i for _, ids in groups for i in ids], skip_locked)}
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
    uow.cases.save_many([(case, now) for case, _, now in changed], core.policy)
    record_effects(uow, core.policy, changed, actor, None)
    return [SweepAction(case.case_id, case.booking_number, effect.action,
                        effect.status_before and str(effect.status_before), effect.status_after and str(effect.status_after),
                        effect.reason, iso_z(case.deadline_at))
            for case, effects, _ in changed for effect in effects if isinstance(effect, Transition)]
