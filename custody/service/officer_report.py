"""The officer's report of a warrant service, as the form in the Prefect UI
takes it, and the `warrant.served` event it becomes.

One submitted form becomes one event wherever it is read: by the reader in
`custody up` within a second of Prefect storing it, or by the case run once it
wakes. Its id names the case and the wait the form answered, its time is the
officer's `served_at` or, left empty, the moment Prefect stored the form, so
every reader builds the very same event and intake records it once."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from custody.service.core import Core, Sender
from custody.service.intake import IngestResult, ingest
from models.events import FUTURE_TOLERANCE, field_name
from models.policy import Policy

FORM_WAIT = "waits-for-wso-service"  # the case run's wait for the form (flows/case.py names its waits)
SENDER = Sender("prefect-ui", frozenset({"warrant.served"}))
# The location of a service the officer says was not inside the jail: intake refuses it (rule 5).
OUTSIDE = "OUTSIDE-THE-JAIL"
# Intake names an event's fields; the officer reads the form's.
FORM_FIELD = {"occurred_at": "served_at", "location": "served_inside_facility"}


class OfficerReport(BaseModel):
    """What a certified WSO reports after serving the ICE warrant. There is
    deliberately no field about birthplace, citizenship or alienage: WSOs may
    not ask. `served_at` may be left empty; the other fields are required, so an
    empty form cannot resume the run."""
    officer_badge: str = Field(min_length=1, max_length=128, description="Your WSO badge number, as on the roster")
    warrant_number: str = Field(min_length=1, max_length=128, description="The number of the I-200 or I-205 you served")
    served_at: datetime | None = Field(
        default=None, description="When you served it: leave it empty for now (the moment you press Submit). "
                                  "A time you type is jail time unless you give an offset")
    served_inside_facility: bool = Field(description="I served the warrant inside this jail's facility")


def report_event_id(case_id: str, wait_key: str) -> str:
    return f"form-{case_id}-{wait_key}"


def response_key(wait_key: str) -> str:
    """Where Prefect stores the form that answers a wait (prefect.input.run_input:
    the Suspended state's name, lowercased, then the wait's key)."""
    return f"suspended-{wait_key}-response"


def wait_key_of(input_key: str) -> str | None:
    """The wait an input answers, if it is an officer's form; None otherwise."""
    if not (input_key.startswith(f"suspended-{FORM_WAIT}-") and input_key.endswith("-response")):
        return None
    return input_key.removeprefix("suspended-").removesuffix("-response")


def service_event(case_id: str, booking_number: str, facility: str, report: OfficerReport, wait_key: str,
                  submitted_at: datetime, policy: Policy) -> dict[str, Any]:
    served_at = report.served_at or submitted_at
    if served_at.tzinfo is None:  # the form says: jail time unless an offset is given
        served_at = served_at.replace(tzinfo=policy.timezone)
    return {
        "event_id": report_event_id(case_id, wait_key), "type": "warrant.served",
        "occurred_at": served_at.isoformat(), "booking_number": booking_number, "facility": facility,
        "officer_badge": report.officer_badge.strip(), "warrant_number": report.warrant_number.strip(),
        "location": facility if report.served_inside_facility else OUTSIDE,
    }


def record_report(core: Core, case_id: str, wait_key: str, value: Any, submitted_at: datetime) -> IngestResult:
    """The one way a submitted form becomes a fact: through intake, as any
    `warrant.served` event. Accepted, a duplicate (another reader was first), or
    rejected with the reason in the form's own field names (a refused service
    stays on the case's record; a form that is not a report changes nothing)."""
    event_id = report_event_id(case_id, wait_key)
    try:
        report = OfficerReport.model_validate(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(field_name(p) for p in first["loc"]) or "form"
        return IngestResult(event_id, "rejected", f"{where}: {first['msg'].removeprefix('Value error, ')}")
    with core.uow(read_only=True) as uow:
        case = uow.cases.get(case_id)
    if case is None:
        return IngestResult(event_id, "rejected", f"case: {case_id} is not in the database")
    event = service_event(case_id, case.booking_number, case.facility, report, wait_key, submitted_at, core.policy)
    if datetime.fromisoformat(event["occurred_at"]) - submitted_at > FUTURE_TOLERANCE:
        # Judged by the moment of Submit, not of reading: every reader decides this form alike.
        return IngestResult(event_id, "rejected", "served_at: is more than 5 minutes after the form was submitted")
    result = ingest(core, event, SENDER)
    if result.result == "rejected" and result.reason:
        result.reason = form_reason(result.reason)
    return result


def form_reason(reason: str) -> str:
    """Intake's reason with the field as the form names it."""
    field, sep, rest = reason.partition(": ")
    if field == "location" and sep:
        return "served_inside_facility: a warrant may be served only inside this jail's facility"
    return f"{FORM_FIELD.get(field, field)}{sep}{rest}"
