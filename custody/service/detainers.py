"""A detainer arriving: it opens the person's case, or merges into the one
open for them (rule 11); a new case catches up on what the jail already said."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Callable

from custody.service.case_events import CASE_LEVEL_TYPES, apply_to_case
from custody.service.recording import advance, persist
from custody.store.unit_of_work import SqlUnitOfWork
from models.case import Case
from models.domain import Detainer, Status, Transition
from models.events import SAME_INSTANT_ORDER, DetainerReceived, parse_event
from models.policy import Policy


def detainer_from(event: DetainerReceived) -> Detainer:
    d = event.detainer
    return Detainer(
        a_number=d.a_number, ice_event_number=d.ice_event_number, form=d.form, requests_custody=d.requests_custody,
        issuing_office=d.issuing_office, issued_at=d.issued_at, received_at=event.occurred_at,
        warrant_form=event.warrant.form if event.warrant else None,
        warrant_number=event.warrant.number if event.warrant else None,
        identity_verified=event.subject.identity_verified, subject_name=event.subject.name,
        subject_dob=event.subject.dob, event_id=event.event_id)


def detainer_received(uow: SqlUnitOfWork, policy: Policy, event: DetainerReceived, now: datetime, actor: str,
                      timers: bool = True) -> tuple[str, str]:
    """(case id, what it did). The same detainer again is recorded as repeated;
    another for a person with an open case merges into it; else a case opens."""
    d, detainer = event.detainer, detainer_from(event)
    known = uow.detainers.find(d.a_number, d.ice_event_number)
    detainer_id = None
    if known is not None:
        case = uow.cases.get(known["case_id"])
        case.effects.append(Transition("detainer_repeated", case.status, case.status,
                                       f"the same detainer (A-number and ICE event {d.ice_event_number}) sent again; merged"))
    else:
        uow.lock_person(d.a_number)
        case = uow.cases.open_for(event.booking_number, d.a_number)
        if case is not None:
            added = uow.detainers.add(case.case_id, detainer)
            detainer_id = added if case.status is Status.AWAITING_RELEASE else None  # a merged one governs only then
            case.merge_detainer(detainer, policy)
        else:
            case = _open(uow, policy, event, detainer, now)
    if timers:
        advance(uow, policy, case, now)
    return case.case_id, persist(uow, policy, case, now, actor, event.event_id, detainer_id)


def _open(uow: SqlUnitOfWork, policy: Policy, event: DetainerReceived, detainer: Detainer, now: datetime) -> Case:
    case = Case.open(uow.cases.next_id(policy.local(event.occurred_at).year), event.booking_number, event.facility, detainer, policy)
    uow.cases.insert(case, uow.detainers.add(case.case_id, detainer), policy, now)
    _catch_up(uow, policy, case, event, now)
    return case


def _catch_up(uow: SqlUnitOfWork, policy: Policy, case: Case, event: DetainerReceived, now: datetime) -> None:
    """Apply what the jail told us about this booking before the detainer came,
    in the order it happened (facts of one instant as a batch orders them):
    the release state from the booking, then the case-level events that were
    kept waiting for a case."""
    booking = uow.bookings.get(case.booking_number)
    released_at = booking["released_at"]
    pending = [row for row in uow.inbox.pending(case.booking_number) if row["event_id"] != event.event_id]
    for row in pending:
        uow.inbox.set_outcome(row["event_id"], case.case_id, (row["outcome"] + "; " if row["outcome"] else "") + f"applied to {case.case_id} when the detainer arrived")
    if released_at is not None and released_at < event.occurred_at:  # at one instant the detainer comes first (SAME_INSTANT_ORDER)
        case.close_already_released(released_at, now)
        return
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
            steps.append((row["occurred_at"], order[kept.type], lambda kept=kept: apply_to_case(uow, policy, case, kept, now, replay=True)))
    for _, _, step in sorted(steps, key=lambda s: (s[0], s[1])):
        step()
