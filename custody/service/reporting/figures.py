"""The figures of a period report, computed from plain records.

A report covers local calendar days [first, last] of the jail's time zone.
Counting rules (stated in the report itself, so a reader can check them):
- detainers are counted when received;
- cases are counted by how they ended, when they ended in the period, or as
  "still open" when they were opened before the period's end and had not ended
  by then;
- a person is over-detained when they left custody (or, with no recorded
  release, were still in custody at the period's end) after the hold deadline.

Nothing here reads a name, a date of birth or an A-number: aggregate reports
carry none (only the single-case record does).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from statistics import median
from typing import Iterable, Mapping

from models.case import Case
from models.domain import DetainerForm, Status
from models.policy import Policy

OUTCOMES = (
    ("picked_up", "picked up by ICE in time"),
    ("picked_up_late", "picked up by ICE after release was due"),
    ("released_at_limit", "released after a hold (no pickup)"),
    ("lifted", "detainer lifted"),
    ("no_authority", "no authority to hold"),
    ("transferred_elsewhere", "transferred elsewhere"),
    ("still_open", "still open"),
)
FORMS = (
    ("I-247A with warrant", "I-247A with an I-200/I-205 warrant"),
    ("I-247A without warrant", "I-247A without a warrant"),
    ("I-247G", "I-247G (notification only)"),
    ("legacy", "legacy forms (I-247D, I-247N)"),
)


class ReportPeriodError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Period:
    first: date  # local dates, both included
    last: date
    start: datetime  # UTC instants: [start, end)
    end: datetime

    @classmethod
    def of_days(cls, first: date, last: date, policy: Policy) -> "Period":
        if last < first:
            raise ReportPeriodError("to", f"{last} is before --from {first}")
        zone = policy.timezone

        def midnight(day: date) -> datetime:
            return datetime.combine(day, time(0), tzinfo=zone).astimezone(timezone.utc)

        return cls(first, last, midnight(first), midnight(last + timedelta(days=1)))

    def contains(self, instant: datetime | None) -> bool:
        return instant is not None and self.start <= instant < self.end

    @property
    def label(self) -> str:
        return f"{self.first.isoformat()} to {self.last.isoformat()}"


@dataclass(frozen=True)
class OverDetention:
    case_id: str
    booking_number: str
    release_due_at: datetime  # when our custody on the detainer had to end (Case.release_due)
    due_because: str
    deadline_at: datetime  # the hold deadline, T0 plus the limit, for reference
    left_at: datetime | None  # None: no release recorded by the period's end
    minutes_past: int  # from release_due_at
    how: str

@dataclass(frozen=True)
class FailedNotice:
    outbox_id: int
    case_id: str | None
    kind: str
    group: str
    attempts: int
    last_error: str
    escalated_to: tuple[str, ...]
    escalation_states: tuple[str, ...]
    state: str  # "sent": delivered in the end, after the escalation


@dataclass
class Figures:
    period: Period
    hold_limit_hours: float
    bookings_seen: int                            # bookings first heard of in the period
    detainers_by_form: dict[str, int]
    outcomes: dict[str, int]
    hours_held: list[tuple[str, float]]          # (case, hours from T0 to leaving custody), holds only
    pickup_delay_hours: list[tuple[str, float]]  # (case, hours from service to ICE pickup)
    over_detentions: list[OverDetention]
    ice_notices: dict[str, dict[str, int]]        # kind -> sent/acknowledged/failed/pending/total
    services_per_officer: dict[str, int]          # badge -> services in the period
    failed_notices: list[FailedNotice]
    roster_days_without_officer: list[date] = field(default_factory=list)

    @property
    def ice_notice_totals(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for counts in self.ice_notices.values():
            totals.update(counts)
        return {k: totals.get(k, 0) for k in ("total", "sent", "acknowledged", "failed", "pending")}


def detainer_form_group(form: str, warrant_form: str | None) -> str:
    if form == DetainerForm.I247A:
        return "I-247A with warrant" if warrant_form else "I-247A without warrant"
    if form == DetainerForm.I247G:
        return "I-247G"
    return "legacy"


def ended_at(case: Case) -> datetime | None:
    """When the case stopped being open (its outcome's instant)."""
    if case.status is Status.CLOSED:
        return case.closed_at
    return case.left_custody_at


def outcome_of(case: Case, policy: Policy) -> str:
    """Read on a case that has ended. A pickup is late when it came after the
    person's release was due (Case.release_due), as the over-detention table
    counts it, whether or not a hold was ever authorised."""
    if case.lifted_at is not None:
        return "lifted"
    if case.status is Status.TRANSFERRED:
        if (case.transferred_to or "").upper() != "ICE":
            return "transferred_elsewhere"
        due = case.release_due(policy)
        late = due is not None and case.transferred_at is not None and case.transferred_at > due[0]
        return "picked_up_late" if late else "picked_up"
    if case.hold_authorized:
        return "released_at_limit"
    return "no_authority"


def _over_detention(case: Case, period: Period, policy: Policy, as_of: datetime) -> OverDetention | None:
    """Counted from when release was due, case by case (Case.release_due): the
    deadline where a hold was authorised, the moment the person would otherwise
    have gone free (with the officer's window and the desk's allowance) where
    none was. `as_of`: the period's end, or now for a period not yet ended."""
    due = case.release_due(policy)
    if due is None or case.deadline_at is None:
        return None
    due_at, because = due
    if due_at >= as_of:
        return None
    left = case.left_custody_at
    if case.status is Status.CLOSED and case.released_at is None:
        return None  # closed at T0 without a hold and no release reported: the jail's ordinary one, not ours to time
    if left is not None and left < period.start:
        return None
    if left is not None and left <= due_at:
        return None
    if left is None or left >= as_of:
        until, how = as_of, ("no release recorded by the end of the period" if as_of == period.end
                             else "no release recorded yet: still in custody past the time release was due")
        left = None
    else:
        until = left
        how = f"{'picked up by ' + case.transferred_to if case.status is Status.TRANSFERRED else 'released'} after release was due"
    minutes = int((until - due_at).total_seconds() // 60)
    return OverDetention(case.case_id, case.booking_number, due_at, because, case.deadline_at, left, max(minutes, 0), how)


def compute(period: Period, policy: Policy, cases: Iterable[Case], detainers: Iterable[Mapping],
            outbox: Iterable[Mapping], bookings_first_seen: Iterable[datetime] = (), now: datetime | None = None) -> Figures:
    """`detainers` and `outbox` are rows (mappings) as the database holds them;
    `now` bounds a period that has not ended yet (nothing is judged in the future)."""
    as_of = period.end if now is None else min(period.end, now)
    cases = list(cases)
    forms: Counter[str] = Counter()
    for d in detainers:
        if period.contains(d["received_at"]):
            forms[detainer_form_group(d["form"], d["warrant_form"])] += 1

    outcomes: Counter[str] = Counter()
    hours_held: list[tuple[str, float]] = []
    pickup: list[tuple[str, float]] = []
    over: list[OverDetention] = []
    services: Counter[str] = Counter()
    for case in cases:
        if case.opened_at >= period.end:
            continue
        end = ended_at(case)
        if end is None or end >= period.end:
            outcomes["still_open"] += 1
        elif end >= period.start:
            outcomes[outcome_of(case, policy)] += 1
            left = case.left_custody_at
            if case.hold_started_at is not None and case.t0 is not None and left is not None:
                hours_held.append((case.case_id, (left - case.t0).total_seconds() / 3600))
            if (case.status is Status.TRANSFERRED and (case.transferred_to or "").upper() == "ICE" and case.hold_authorized
                    and case.hold_started_at is not None and case.transferred_at is not None):  # from the hold's start
                pickup.append((case.case_id, (case.transferred_at - case.hold_started_at).total_seconds() / 3600))
        found = _over_detention(case, period, policy, as_of)
        if found is not None:
            over.append(found)
        if period.contains(case.served_at) and case.served_by:
            services[case.served_by] += 1

    outbox = [r for r in outbox if period.contains(r["created_at"])]
    escalations: dict[str, list[Mapping]] = {}
    for r in outbox:
        if r["kind"] == "escalation":
            escalations.setdefault(r["idempotency_key"].rsplit(":escalated:", 1)[0], []).append(r)
    ice: dict[str, Counter[str]] = {}
    for r in outbox:
        if r["recipient_group"] != "ice":
            continue
        counts = ice.setdefault(r["kind"], Counter())
        counts["total"] += 1
        gave_up = r["state"] == "failed" or r["idempotency_key"] in escalations
        counts["sent" if r["state"] == "sent" else ("failed" if gave_up else "pending")] += 1
        if r["acknowledged_at"] is not None:
            counts["acknowledged"] += 1
    failed = []
    for r in outbox:  # a notice failed if it ran out of attempts: it was escalated (and is still retried)
        if r["state"] != "failed" and r["idempotency_key"] not in escalations:
            continue
        esc = sorted(escalations.get(r["idempotency_key"], []), key=lambda e: e["recipient_group"])
        failed.append(FailedNotice(r["id"], r["case_id"], r["kind"], r["recipient_group"], r["attempts"],
                                   (r["last_error"] or "").splitlines()[0][:200] if r["last_error"] else "",
                                   tuple(e["recipient_group"] for e in esc), tuple(e["state"] for e in esc), r["state"]))

    return Figures(
        period=period,
        hold_limit_hours=policy.hold_limit.total_seconds() / 3600,
        bookings_seen=sum(1 for seen in bookings_first_seen if period.contains(seen)),
        detainers_by_form={key: forms.get(key, 0) for key, _ in FORMS},
        outcomes={key: outcomes.get(key, 0) for key, _ in OUTCOMES},
        hours_held=sorted(hours_held),
        pickup_delay_hours=sorted(pickup),
        over_detentions=sorted(over, key=lambda o: (o.release_due_at, o.case_id)),
        ice_notices={kind: {k: c.get(k, 0) for k in ("total", "sent", "acknowledged", "failed", "pending")}
                     for kind, c in sorted(ice.items())},
        services_per_officer=dict(sorted(services.items())),
        failed_notices=sorted(failed, key=lambda f: f.outbox_id),
    )


def summary_stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "median": None, "p90": None, "max": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"count": len(ordered), "median": median(ordered), "p90": p90, "max": ordered[-1]}
