"""The legal rules of domain.md as pure functions of facts, policy and time."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable

from models.clock import as_utc
from models.domain import Detainer, DetainerForm, Problem, RosterEntry, Service
from models.policy import AnchorKind, Mode, Policy

NOTIFY_ONLY_FORMS = frozenset({DetainerForm.I247G, DetainerForm.I247N})


def clock_anchor(policy: Policy, release_authorized_at: datetime, detainer_received_at: datetime) -> tuple[datetime, AnchorKind]:
    """T0 under the rule in force when the person would otherwise be released.
    Rule 1: it is the effective time from the jail's records, never when we heard."""
    kind = policy.anchor_kind_at(release_authorized_at)
    if kind is AnchorKind.DETAINER_RECEIVED:
        return as_utc(detainer_received_at), kind
    return as_utc(release_authorized_at), kind


def hold_deadline(t0: datetime, policy: Policy) -> datetime:
    """Rule 2: elapsed time, in UTC. Adding a timedelta to a local aware datetime
    does wall-clock arithmetic in Python and is an hour wrong across DST."""
    return as_utc(t0) + policy.hold_limit


def release_order_time(deadline: datetime, policy: Policy) -> datetime:
    return deadline - policy.release_order_lead


def service_due_by(release_authorized_at: datetime, policy: Policy) -> datetime:
    """Rule 6: no certified service by T0 plus the grace, no hold."""
    return as_utc(release_authorized_at) + policy.service_grace


# A service at the very instant the window closes counts (served_at <= T0 + grace),
# so the window has ended only at the first instant after it.
JUST_AFTER = timedelta(microseconds=1)
# The reports' watermark where no reader has ever finished a pass.
NEVER_READ = datetime(1970, 1, 1, tzinfo=timezone.utc)


def service_window_end(closes_at: datetime, reports_read_through: datetime | None, policy: Policy) -> datetime:
    """When rule 6's window counts as ended without a service. A service counts by
    when it happened and when its report reached us, not by when we read it: an
    officer's form stored by Prefect before the window closed may not have been
    read yet. So the window ends when it closes if every report made until then
    has been read (`reports_read_through` at or past the close, or None where no
    report can wait outside the database), and otherwise once they have been
    read, or `report_wait` after the close if they cannot be (Prefect down)."""
    closes_at = as_utc(closes_at)
    if reports_read_through is None or as_utc(reports_read_through) >= closes_at:
        return closes_at + JUST_AFTER
    return closes_at + max(policy.report_wait, JUST_AFTER)


def authority_problems(detainer: Detainer, policy: Policy) -> list[str]:
    """Everything but the WSO's service that a hold needs (rule 3, rule 10).
    Empty means the papers authorise a hold."""
    problems: list[str] = []
    if policy.mode is Mode.NOTIFY_ONLY:
        problems.append("this jurisdiction is notify-only: it never holds on a detainer")
    if detainer.form in NOTIFY_ONLY_FORMS:
        problems.append(f"form {detainer.form} is a request for notification only and authorises no hold")
    elif detainer.form is not DetainerForm.I247A:
        problems.append(f"form {detainer.form} is not a current custody request (an I-247A is required)")
    elif not detainer.requests_custody:
        problems.append("box 1 of the I-247A (request to maintain custody) is not checked")
    if detainer.warrant_form is None or not detainer.warrant_number:
        problems.append("no I-200 or I-205 warrant is attached")
    if not detainer.identity_verified:
        problems.append("the subject's identity has not been verified against the booking (supervisor review)")
    return problems


def roster_entry_at(entries: Iterable[RosterEntry], badge: str, instant: datetime) -> RosterEntry | None:
    """The officer's roster line for a service at `instant`: the line in force
    then, so a later re-certification cannot cure a lapsed one; failing that, the
    first line loaded afterwards (a service reported after the roster was first
    loaded still counts by its certification dates). An officer whose line had
    ended by then, and none stood in its place, was off the roster: no service."""
    instant = as_utc(instant)
    later: list[RosterEntry] = []
    removed_before = False
    for entry in entries:
        if entry.badge != badge:
            continue
        if entry.valid_to is not None and as_utc(entry.valid_to) <= instant:
            removed_before = True
            continue
        if entry.valid_from is None or as_utc(entry.valid_from) <= instant:
            return entry
        later.append(entry)
    if removed_before or not later:
        return None
    return min(later, key=lambda e: e.valid_from)


def service_problems(
    service: Service,
    *,
    roster: Iterable[RosterEntry],
    warrant_number: str | None,
    booked_facility: str,
    policy: Policy,
) -> list[Problem]:
    """Rule 5: service only by a WSO on the roster and certified on the (local)
    service date, only at this jail's own facility, of the warrant on file."""
    problems: list[Problem] = []
    if not policy.has_facility(service.location):
        problems.append(Problem("location", f"{service.location!r} is not one of this jail's facilities ({', '.join(policy.facilities)}); a WSO may serve only inside the jail"))
    elif service.location != booked_facility:
        problems.append(Problem("location", f"the person is booked at {booked_facility}, not {service.location}"))
    entry = roster_entry_at(roster, service.officer_badge, service.served_at)
    service_day = policy.local(service.served_at).date()
    if entry is None:
        problems.append(Problem("officer_badge", f"badge {service.officer_badge!r} is not on the WSO roster"))
    elif not entry.certified_on_day(service_day):
        problems.append(Problem("officer_badge", f"badge {service.officer_badge!r} is not certified on {service_day.isoformat()} (certified {entry.certified_on.isoformat()} to {entry.expires_on.isoformat()})"))
    elif entry.facility and entry.facility != service.location and policy.has_facility(service.location):
        problems.append(Problem("officer_badge", f"badge {service.officer_badge!r} is a WSO of facility {entry.facility}, not {service.location}"))
    if not warrant_number:
        problems.append(Problem("warrant_number", "there is no ICE warrant on file for this case to serve"))
    elif service.warrant_number.strip().upper() != warrant_number.strip().upper():
        problems.append(Problem("warrant_number", "does not match the warrant on file for this case"))
    return problems


def next_reminder_mark(deadline: datetime, marks: tuple[timedelta, ...], now: datetime, last_sent: timedelta | None) -> timedelta | None:
    """The mark now due, if any. After an outage only the nearest passed mark is
    sent: three stale reminders at once would bury the one that matters."""
    due = [m for m in marks if now >= deadline - m and (last_sent is None or m < last_sent)]
    return min(due) if due else None


def upcoming_reminder_at(deadline: datetime, marks: tuple[timedelta, ...], last_sent: timedelta | None) -> datetime | None:
    pending = [deadline - m for m in marks if last_sent is None or m < last_sent]
    return min(pending) if pending else None
