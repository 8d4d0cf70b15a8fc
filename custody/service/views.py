"""Read models: a case as the operators and outside tools see it."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from custody.store.unit_of_work import SqlUnitOfWork
from models.case import Case
from models.clock import iso_z
from models.policy import Policy


def format_local(text: str | None, policy: Policy) -> str:
    """'2026-11-02T16:00:00Z' as the jail reads it: '2026-11-02 11:00 EST'."""
    if not text:
        return "-"
    return policy.local(datetime.fromisoformat(text.replace("Z", "+00:00"))).strftime("%Y-%m-%d %H:%M %Z")


def format_past_due(minutes: int | None) -> str:
    """How long past the time release was due: '-' when not past it."""
    return "-" if minutes is None else format_left(minutes * 60)


def format_left(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    return f"{sign}{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _local(instant: datetime | None, policy: Policy) -> str | None:
    return None if instant is None else policy.local(instant).isoformat()


def case_summary(case: Case, policy: Policy, now: datetime) -> dict[str, Any]:
    left = None
    if case.deadline_at is not None and case.is_open and case.holds_on_authority:
        left = int((case.deadline_at - now).total_seconds())
    due = case.release_due(policy)
    return {
        "case_id": case.case_id,
        "booking_number": case.booking_number,
        "facility": case.facility,
        "status": str(case.status),
        "status_reason": case.status_reason,
        "t0": iso_z(case.t0),
        "anchor_rule": case.anchor_rule,
        "deadline_at": iso_z(case.deadline_at),
        "deadline_local": _local(case.deadline_at, policy),
        "release_order_at": iso_z(case.release_order_at),
        "seconds_left": left,
        "hold_authorized": case.hold_authorized,
        "no_hold_reason": case.no_hold_reason,
        "detainer_form": str(case.detainer.form),
        "warrant_form": case.detainer.warrant_form and str(case.detainer.warrant_form),
        "warrant_number": case.detainer.warrant_number,
        "release_authorized_at": iso_z(case.release_authorized_at),
        "served_at": iso_z(case.served_at),
        "served_by": case.served_by,
        "copy_served_at": iso_z(case.copy_served_at),
        "release_ordered_at": iso_z(case.release_ordered_at),
        "released_at": iso_z(case.released_at),
        "transferred_at": iso_z(case.transferred_at),
        "transferred_to": case.transferred_to,
        "lifted_at": iso_z(case.lifted_at),
        "next_due_at": iso_z(case.next_due_at(policy)) if case.is_open else None,
        # When our custody on the detainer had to end, and how long past it the person was held.
        "release_due_at": iso_z(due[0]) if due else None,
        "release_due_because": due[1] if due else None,
        "minutes_past_due": case.minutes_past_due(policy, now),
        "opened_at": iso_z(case.opened_at),
        "warnings": case.warnings(),
    }


def case_detail(uow: SqlUnitOfWork, case: Case, policy: Policy, now: datetime) -> dict[str, Any]:
    return case_details(uow, [case], policy, now)[0]


def case_details(uow: SqlUnitOfWork, cases: list[Case], policy: Policy, now: datetime) -> list[dict[str, Any]]:
    """Each case's summary with its detainers and its timeline of events and
    actions, read a chunk of cases at a time: `custody case show` and
    `custody cases --json` give one and the same object for a case."""
    ids = [c.case_id for c in cases]
    unacked = uow.outbox.unacknowledged_ice(ids)
    detainers, inbox, audit = uow.detainers.for_cases(ids), uow.inbox.for_cases(ids), uow.audit.for_cases(ids)
    views = []
    for case in cases:
        view = case_summary(case, policy, now)
        view["unacknowledged_ice_notices"] = unacked.get(case.case_id, [])
        view["detainers"] = [{
            "form": d["form"], "requests_custody": d["requests_custody"], "ice_event_number": d["ice_event_number"],
            "issuing_office": d["issuing_office"], "issued_at": iso_z(d["issued_at"]), "received_at": iso_z(d["received_at"]),
            "warrant_form": d["warrant_form"], "warrant_number": d["warrant_number"],
            "identity_verified": d["identity_verified"], "event_id": d["event_id"],
        } for d in detainers.get(case.case_id, [])]
        view["timeline"] = _timeline(inbox.get(case.case_id, []), audit.get(case.case_id, []))
        views.append(view)
    return views


def _timeline(inbox: list, audit: list) -> list[dict[str, Any]]:
    timeline: list[dict[str, Any]] = []
    for row in inbox:
        timeline.append({"at": iso_z(row["occurred_at"]), "kind": "event", "type": row["type"], "event_id": row["event_id"],
                         "received_at": iso_z(row["received_at"]), "sender": row["sender"], "outcome": row["outcome"]})
    for row in audit:
        timeline.append({"at": iso_z(row["at"]), "kind": "action", "action": row["action"], "actor": row["actor"],
                         "status_before": row["status_before"], "status_after": row["status_after"],
                         "reason": row["reason"], "source_event_id": row["source_event_id"]})
    timeline.sort(key=lambda item: (item["at"], item["kind"] == "action"))
    return timeline


def find_case(uow: SqlUnitOfWork, key: str) -> Case | None:
    """By case id, or by booking number (the open case first, else the latest)."""
    return uow.cases.get(key) or uow.cases.open_for(key) or uow.cases.latest_for_booking(key)


def open_cases(uow: SqlUnitOfWork, policy: Policy, now: datetime, limit: int | None = None,
               orders_first: bool = False) -> list[dict[str, Any]]:
    """Open cases, soonest deadline first (those with no clock running yet last); `limit`: the first that many;
    `orders_first`: releases ordered and not confirmed before all the rest."""
    cases = uow.cases.open(limit, orders_first)
    unacked = uow.outbox.unacknowledged_ice([c.case_id for c in cases])
    return [{**case_summary(c, policy, now), "unacknowledged_ice_notices": unacked.get(c.case_id, [])} for c in cases]


def open_case_details(uow: SqlUnitOfWork, policy: Policy, now: datetime) -> list[dict[str, Any]]:
    """Every open case as `case_details` gives it, in `open_cases`' order."""
    return case_details(uow, uow.cases.open(), policy, now)
