"""What records staff and the release desk report in the Prefect UI, as the Run
forms of the `record-*` deployments (flows/staff_forms.py), and the events the
forms become.

A form is one event, through intake like any other: validated, refused naming
the form's own field, attributed to the UI, audited. Its id is the run's, so a
run retried by Prefect records its fact once. Its time is the one typed in the
form (jail time unless an offset is given) or, left empty, the moment the form
was submitted: the run's creation, never the moment a busy machine got round to
starting it (a fact counts by when it happened)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic_core import to_jsonable_python

from custody.service.core import Core, Sender
from custody.service.intake import IngestResult, ingest
from models.events import FUTURE_TOLERANCE
from models.policy import Policy

FORM_TYPES = frozenset({"detainer.received", "detainer.copy_served", "detainer.lifted", "inmate.released",
                        "custody.transferred", "notice.acknowledged"})
SENDER = Sender("prefect-ui", FORM_TYPES)
# Each form's name for the moment its fact happened (the event's occurred_at).
WHEN_FIELD = {"detainer.received": "received_at", "detainer.copy_served": "served_at", "detainer.lifted": "lifted_at",
              "inmate.released": "released_at", "custody.transferred": "handed_over_at",
              "notice.acknowledged": "acknowledged_at"}
# The detainer's form is flat; intake names the event's nested fields.
DETAINER_FIELD = {"detainer.form": "detainer_form", "detainer.requests_custody": "requests_custody",
                  "detainer.a_number": "a_number", "detainer.ice_event_number": "ice_event_number",
                  "detainer.issuing_office": "issuing_office", "detainer.issued_at": "issued_at",
                  "warrant.form": "warrant_form", "warrant.number": "warrant_number", "subject.name": "subject_name",
                  "subject.dob": "subject_dob", "subject.identity_verified": "identity_verified"}


class FormRefused(ValueError):
    """A form that cannot become an event, naming the form's field."""


def instant(value: datetime | None, submitted_at: datetime, policy: Policy) -> datetime:
    """A typed time is jail time unless it carries an offset; none typed is the submission."""
    if value is None:
        return submitted_at
    return value.replace(tzinfo=policy.timezone) if value.tzinfo is None else value


def form_event(kind: str, run_id: str, submitted_at: datetime, policy: Policy, booking_number: str,
               when: datetime | None = None, facility: str | None = None, **fields: Any) -> dict[str, Any]:
    """The event a submitted form stands for, with the fields intake checks."""
    event: dict[str, Any] = {"event_id": f"ui-{run_id}", "type": kind, "booking_number": booking_number.strip(),
                             "occurred_at": instant(when, submitted_at, policy).isoformat()}
    if facility:
        event["facility"] = facility.strip()
    return {**event, **to_jsonable_python(fields)}


def detainer_fields(policy: Policy, submitted_at: datetime, *, detainer_form: str, requests_custody: bool,
                    a_number: str, ice_event_number: str, issuing_office: str, issued_at: datetime,
                    subject_name: str, subject_dob: date, identity_verified: bool, warrant_form: str | None,
                    warrant_number: str | None) -> dict[str, Any]:
    """The flat detainer form as the event's detainer, warrant and subject."""
    if bool(warrant_form) != bool(warrant_number and warrant_number.strip()):
        missing = "warrant_number" if warrant_form else "warrant_form"
        raise FormRefused(f"{missing}: is required when the other warrant field is given (or leave both empty)")
    fields: dict[str, Any] = {
        "detainer": {"form": detainer_form, "requests_custody": requests_custody, "a_number": a_number,
                     "ice_event_number": ice_event_number.strip(), "issuing_office": issuing_office,
                     "issued_at": instant(issued_at, submitted_at, policy)},
        "subject": {"name": subject_name, "dob": subject_dob, "identity_verified": identity_verified},
    }
    if warrant_form:
        fields["warrant"] = {"form": warrant_form, "number": warrant_number.strip()}  # type: ignore[union-attr]
    return fields


def record_form(core: Core, event: dict[str, Any], submitted_at: datetime) -> IngestResult:
    """The one way a staff form becomes a fact: intake, with the reason in the form's words."""
    kind = event["type"]
    if datetime.fromisoformat(event["occurred_at"]) - submitted_at > FUTURE_TOLERANCE:
        return IngestResult(event["event_id"], "rejected",
                            f"{WHEN_FIELD[kind]}: is more than 5 minutes after the form was submitted")
    result = ingest(core, event, SENDER)
    if result.result == "rejected" and result.reason:
        result.reason = form_reason(kind, result.reason)
    return result


def form_reason(kind: str, reason: str) -> str:
    field, sep, rest = reason.partition(": ")
    if not sep:
        return reason
    named = {"occurred_at": WHEN_FIELD[kind], **DETAINER_FIELD}.get(field, field)
    return f"{named}: {rest}"

