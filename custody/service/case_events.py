"""What each event does to the case it is about: one small handler per event
type, found through CASE_EVENTS. Each asks the case to decide (models/case.py);
a refused service is the one outcome a handler returns, so that intake can
answer it while the attempt stays on the case's record."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from custody.store.unit_of_work import SqlUnitOfWork
from models.case import Case
from models.clock import iso_z
from models.domain import Problem, Service, Transition
from models.events import FUTURE_TOLERANCE, EventRejected
from models.policy import Policy
from models.rules import service_problems


@dataclass(frozen=True)
class Fact:
    """One event, applied to one case, at `now`. `replay`: applied again when a
    detainer arrives after it (its sender was answered long ago)."""
    uow: SqlUnitOfWork
    policy: Policy
    case: Case
    event: Any
    now: datetime
    replay: bool


def _release_authorized(f: Fact) -> None:
    f.case.authorize_release(f.event.occurred_at, str(f.event.reason), f.policy, f.now)


def _inmate_released(f: Fact) -> None:
    f.case.confirm_release(f.event.occurred_at, f.event.released_by, f.policy, f.now)


def _release_scheduled(f: Fact) -> None:
    f.case.schedule_release(f.event.expected_release_at, f.policy, f.now)


def _copy_served(f: Fact) -> None:
    f.case.record_copy_served(f.event.occurred_at, f.event.served_by, f.event.language)


def _lifted(f: Fact) -> None:
    f.case.lift(f.event.occurred_at, f.event.lifted_by, f.event.note, f.now)


def _transferred(f: Fact) -> None:
    f.case.transfer(f.event.occurred_at, f.event.agency, f.event.officer_name, f.policy, f.now)


def _notice_acknowledged(f: Fact) -> None:
    event = f.event
    # Clocks differ by a little: an acknowledgement may carry a time up to the
    # tolerance intake allows for the future before the notice was queued.
    count = f.uow.outbox.acknowledge(f.case.case_id, event.notice, event.occurred_at, event.acknowledged_by,
                                     queued_by=event.occurred_at + FUTURE_TOLERANCE)
    if count == 0 and not f.replay:
        queued = f.uow.outbox.first_unacknowledged_queued_at(f.case.case_id, event.notice)
        if queued is not None:
            raise EventRejected("occurred_at", f"{iso_z(event.occurred_at)} is before the {event.notice!r} notice to ICE "
                                f"it would acknowledge was queued ({iso_z(queued)})")
        raise EventRejected("notice", f"no unacknowledged {event.notice!r} notice to ICE is on file for this case")
    f.case.effects.append(Transition("notice_acknowledged", f.case.status, f.case.status,
                                     f"ICE acknowledged the {event.notice} notice ({event.acknowledged_by})"))


def _warrant_served(f: Fact) -> Problem | None:
    event, case = f.event, f.case
    service = Service(event.officer_badge, event.warrant_number, event.location, event.occurred_at, event.event_id)
    problems = service_problems(service, roster=f.uow.roster.entries(event.officer_badge),
                                warrant_number=case.detainer.warrant_number, booked_facility=case.facility, policy=f.policy)
    case.record_service(service, problems, f.policy, f.now)
    return problems[0] if problems and case.is_open and not f.replay else None


CASE_EVENTS: dict[str, Callable[[Fact], Problem | None]] = {
    "release.authorized": _release_authorized,
    "inmate.released": _inmate_released,
    "release.scheduled": _release_scheduled,
    "detainer.copy_served": _copy_served,
    "detainer.lifted": _lifted,
    "custody.transferred": _transferred,
    "notice.acknowledged": _notice_acknowledged,
    "warrant.served": _warrant_served,
}
# Facts of the booking (its release state) are kept on the booking's row; the
# rest wait in the inbox for a case when none is open yet (custody/service/detainers.py).
BOOKING_LEVEL_TYPES = frozenset({"release.authorized", "inmate.released", "release.scheduled"})
CASE_LEVEL_TYPES = frozenset(CASE_EVENTS) - BOOKING_LEVEL_TYPES


def apply_to_case(uow: SqlUnitOfWork, policy: Policy, case: Case, event: Any, now: datetime, *,
                  replay: bool) -> Problem | None:
    """Apply one fact to the case; the problem that refused it if it is a refused service."""
    return CASE_EVENTS[event.type](Fact(uow, policy, case, event, now, replay))
