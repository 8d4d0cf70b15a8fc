"""Small builders for tests: policies, events and cases, in the domain's words."""
from __future__ import annotations

import copy
from datetime import date, datetime, timedelta, timezone
from typing import Any

from models.case import Case
from models.domain import Detainer, DetainerForm, WarrantForm
from models.policy import Policy, policy_from_mapping

UTC = timezone.utc

BASE_POLICY: dict[str, Any] = {
    "jurisdiction": {"name": "Test County", "mode": "wso", "timezone": "America/New_York", "facilities": ["RCJ"]},
    "hold": {"limit": "48h", "service_grace": "1h", "reminder_marks": ["12h", "4h", "1h"],
             "release_order_lead": "2h", "page_supervisors_before": "30m", "ice_advance_notice": "48h",
             "pickup_poll_interval": "15m"},
    "anchor": [],
}


def policy(**overrides: Any) -> Policy:
    """policy(mode="detainer", limit="24h", anchor=[...], facilities=[...])"""
    data = copy.deepcopy(BASE_POLICY)
    for key, value in overrides.items():
        if key in data["jurisdiction"]:
            data["jurisdiction"][key] = value
        elif key == "anchor":
            data["anchor"] = value
        else:
            data["hold"][key] = value
    return policy_from_mapping(data)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def detainer(received_at: datetime, *, form: str = "I-247A", requests_custody: bool = True, warrant: bool = True,
             identity_verified: bool = True, event_number: str = "EV1", a_number: str = "A123456789") -> Detainer:
    return Detainer(a_number=a_number, ice_event_number=event_number, form=DetainerForm(form),
                    requests_custody=requests_custody, issuing_office="ERO Atlanta",
                    issued_at=received_at - timedelta(hours=1), received_at=received_at,
                    warrant_form=WarrantForm.I200 if warrant else None, warrant_number="W-77" if warrant else None,
                    identity_verified=identity_verified, subject_name="Test Person", subject_dob=date(1990, 1, 2),
                    event_id="d1")


def open_case(received_at: datetime, pol: Policy, **detainer_args: Any) -> Case:
    case = Case.open("2026-00001", "B1", "RCJ", detainer(received_at, **detainer_args), pol)
    case.drain_effects()
    return case


# --- raw events, as senders send them -----------------------------------------------------

def detainer_event(event_id: str, booking: str, at: datetime, *, form: str = "I-247A", box1: bool = True,
                   warrant: str | None = "W-77", verified: bool = True, a_number: str = "A123456789",
                   event_number: str = "EV1", name: str = "Test Person") -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id, "type": "detainer.received", "occurred_at": iso(at), "booking_number": booking,
        "detainer": {"form": form, "requests_custody": box1, "a_number": a_number, "ice_event_number": event_number,
                     "issuing_office": "ERO Atlanta", "issued_at": iso(at - timedelta(hours=1))},
        "subject": {"name": name, "dob": "1990-01-02", "identity_verified": verified},
    }
    if warrant:
        event["warrant"] = {"form": "I-200", "number": warrant}
    return event


def release_event(event_id: str, booking: str, at: datetime, reason: str = "bond_posted") -> dict[str, Any]:
    return {"event_id": event_id, "type": "release.authorized", "occurred_at": iso(at), "booking_number": booking, "reason": reason}


def service_event(event_id: str, booking: str, at: datetime, *, badge: str = "W-1", warrant: str = "W-77", location: str = "RCJ") -> dict[str, Any]:
    return {"event_id": event_id, "type": "warrant.served", "occurred_at": iso(at), "booking_number": booking,
            "officer_badge": badge, "warrant_number": warrant, "location": location}


def transfer_event(event_id: str, booking: str, at: datetime, agency: str = "ICE") -> dict[str, Any]:
    return {"event_id": event_id, "type": "custody.transferred", "occurred_at": iso(at), "booking_number": booking,
            "agency": agency, "officer_name": "Officer P"}


def lift_event(event_id: str, booking: str, at: datetime) -> dict[str, Any]:
    return {"event_id": event_id, "type": "detainer.lifted", "occurred_at": iso(at), "booking_number": booking,
            "lifted_by": "ERO Atlanta", "note": "prosecutorial discretion"}


def released_event(event_id: str, booking: str, at: datetime) -> dict[str, Any]:
    return {"event_id": event_id, "type": "inmate.released", "occurred_at": iso(at), "booking_number": booking,
            "released_by": "Desk officer R"}


def copy_event(event_id: str, booking: str, at: datetime) -> dict[str, Any]:
    return {"event_id": event_id, "type": "detainer.copy_served", "occurred_at": iso(at), "booking_number": booking,
            "served_by": "Clerk H", "language": "Spanish"}


def scheduled_event(event_id: str, booking: str, at: datetime, expected: datetime) -> dict[str, Any]:
    return {"event_id": event_id, "type": "release.scheduled", "occurred_at": iso(at), "booking_number": booking,
            "expected_release_at": iso(expected)}


ROSTER_CSV = "badge,name,certified_on,expires_on,facility\nW-1,Officer One,2025-01-01,2027-12-31,RCJ\nW-2,Officer Two,2024-01-01,2026-03-10,RCJ\n"
