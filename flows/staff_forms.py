"""The Run forms of what records staff and the release desk report in the
Prefect UI: each deployment's parameters are its form, each run one event
through intake (custody/service/staff_forms.py). A refused form fails its run
with the reason, naming the form's field; an accepted one logs the case it
changed."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.runtime import flow_run
from pydantic import Field
from pydantic_core import to_jsonable_python

from custody.service.core import Core
from custody.service.staff_forms import FormRefused, detainer_fields, form_event, record_form
from custody.wiring import core_for_run
from models.events import ICE_NOTICES

BOOKING = Field(min_length=1, max_length=128, description="The person's booking number (as in the jail's system)")
FACILITY = Field(default=None, description="The facility code; leave it empty where this jail has one facility")


def when(what: str) -> Any:
    return Field(default=None, description=f"When {what}: leave it empty for the moment you press Submit. "
                                           "A time you type is jail time unless you give an offset")


def submitted_at(core: Core) -> datetime:
    """The moment of Submit: the run's creation, not its start (late on a busy machine)."""
    context = FlowRunContext.get()
    created = context.flow_run.created if context and context.flow_run else None
    return created if isinstance(created, datetime) else core.clock.now()


# The person's name, date of birth and A-number live in the custody database,
# not in Prefect (README, "Operators in the Prefect UI"). The detainer form has
# to carry them in; once its run has handed them to intake they are taken out of
# the run's parameters, so the UI and the API no longer serve them.
PERSONAL = ("a_number", "subject_name", "subject_dob")
KEPT_ELSEWHERE = "(kept in the custody database, not in Prefect)"


def forget_personal_parameters() -> None:
    from prefect.client.orchestration import get_client

    parameters = to_jsonable_python(dict(flow_run.get_parameters()))
    parameters.update({name: KEPT_ELSEWHERE for name in PERSONAL if name in parameters})
    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run.get_id(), parameters=parameters)


def record(kind: str, **fields: Any) -> dict:
    logger = get_run_logger()
    with core_for_run() as core:
        at = submitted_at(core)
        try:
            if kind == "detainer.received":
                papers = fields.pop("detainer")
                fields.update(detainer_fields(core.policy, at, **papers))
            event = form_event(kind, str(flow_run.get_id()), at, core.policy, **fields)
            result = record_form(core, event, at).as_dict()
        except FormRefused as exc:
            raise ValueError(f"not recorded: {exc}") from None
        finally:
            if kind == "detainer.received":
                forget_personal_parameters()
    if result["result"] == "rejected":
        raise ValueError(f"not recorded: {result['reason']}")
    if result.get("case_id"):
        logger.info("%s recorded (%s) for case %s", kind, result["result"], result["case_id"])
    else:
        logger.warning("%s recorded for booking %s, which has no case yet: it is kept, and a detainer for that "
                       "booking will find it (check the booking number if you expected a case)", kind, event["booking_number"])
    return result


@flow(name="custody-record-detainer", flow_run_name="detainer-{booking_number}", persist_result=False)
def record_detainer(
    booking_number: str = BOOKING,
    detainer_form: Literal["I-247A", "I-247G", "I-247D", "I-247N"] = Field(description="The detainer's form"),
    requests_custody: bool = Field(description="I-247A box 1 is checked: ICE asks the jail to hold the person"),
    a_number: str = Field(min_length=1, max_length=20, description="The A-number on the detainer (8 or 9 digits)"),
    ice_event_number: str = Field(min_length=1, max_length=128, description="ICE's event number on the detainer"),
    issuing_office: str = Field(min_length=1, max_length=200, description="The ICE office that issued it"),
    issued_at: datetime = Field(description="When ICE issued it (jail time unless you give an offset)"),
    subject_name: str = Field(min_length=1, max_length=200, description="The person's name as on the detainer"),
    subject_dob: date = Field(description="The person's date of birth as on the detainer"),
    identity_verified: bool = Field(description="The person held is the person the detainer names (checked)"),
    warrant_form: Literal["I-200", "I-205"] | None = Field(default=None, description="The ICE warrant's form, if one came"),
    warrant_number: str | None = Field(default=None, max_length=128, description="The warrant's number, if one came"),
    received_at: datetime | None = when("the detainer reached the jail"),
    facility: str | None = FACILITY,
) -> dict:
    """Records staff enter a detainer that came by fax, e-mail or hand."""
    papers = dict(detainer_form=detainer_form, requests_custody=requests_custody, a_number=a_number,
                  ice_event_number=ice_event_number, issuing_office=issuing_office, issued_at=issued_at,
                  subject_name=subject_name, subject_dob=subject_dob, identity_verified=identity_verified,
                  warrant_form=warrant_form, warrant_number=warrant_number)
    return record("detainer.received", booking_number=booking_number, when=received_at, facility=facility,
                  detainer=papers)


@flow(name="custody-record-copy-served", flow_run_name="copy-served-{booking_number}", persist_result=False)
def record_copy_served(
    booking_number: str = BOOKING,
    served_by: str = Field(min_length=1, max_length=200, description="Who gave the person the copy (name, badge)"),
    language: str = Field(min_length=1, max_length=200, description="The language of the copy given"),
    served_at: datetime | None = when("the copy was given"),
    facility: str | None = FACILITY,
) -> dict:
    """Records staff: the person has been given a copy of the detainer."""
    return record("detainer.copy_served", booking_number=booking_number, when=served_at, facility=facility,
                  served_by=served_by, language=language)


@flow(name="custody-record-lift", flow_run_name="lift-{booking_number}", persist_result=False)
def record_lift(
    booking_number: str = BOOKING,
    lifted_by: str = Field(min_length=1, max_length=200, description="Who at ICE lifted the detainer (name, office)"),
    note: str = Field(min_length=1, max_length=2000, description="How it was lifted (e.g. the I-247 cancellation, a call)"),
    lifted_at: datetime | None = when("ICE lifted it"),
    facility: str | None = FACILITY,
) -> dict:
    """Records staff: ICE lifted the detainer; the person is released as soon as nothing else holds them."""
    return record("detainer.lifted", booking_number=booking_number, when=lifted_at, facility=facility,
                  lifted_by=lifted_by, note=note)


@flow(name="custody-confirm-release", flow_run_name="released-{booking_number}", persist_result=False)
def confirm_release(
    booking_number: str = BOOKING,
    released_by: str = Field(min_length=1, max_length=200, description="Who at the release desk let the person out"),
    released_at: datetime | None = when("the person left"),
    facility: str | None = FACILITY,
) -> dict:
    """The release desk: the person has physically left; the case closes."""
    return record("inmate.released", booking_number=booking_number, when=released_at, facility=facility,
                  released_by=released_by)


@flow(name="custody-record-handover", flow_run_name="handover-{booking_number}", persist_result=False)
def record_handover(
    booking_number: str = BOOKING,
    agency: str = Field(default="ICE", min_length=1, max_length=200,
                        description="Who took custody: ICE (a pickup), or the agency of a transfer out"),
    officer_name: str = Field(min_length=1, max_length=200, description="The receiving officer's name"),
    handed_over_at: datetime | None = when("the person was handed over"),
    facility: str | None = FACILITY,
) -> dict:
    """The release desk: ICE picked the person up, or another agency took them; the case closes."""
    return record("custody.transferred", booking_number=booking_number, when=handed_over_at, facility=facility,
                  agency=agency, officer_name=officer_name)


@flow(name="custody-acknowledge-notice", persist_result=False)
def acknowledge_notice(
    booking_number: str = BOOKING,
    notice: Literal[ICE_NOTICES] = Field(description="Which notice ICE acknowledged"),  # type: ignore[valid-type]
    acknowledged_by: str = Field(min_length=1, max_length=200, description="Who at ICE acknowledged it (name, office)"),
    acknowledged_at: datetime | None = when("ICE acknowledged it"),
    facility: str | None = FACILITY,
) -> dict:
    """Records staff who hear back from ICE (a phone call, an e-mail reply): ICE acknowledged a notice."""
    return record("notice.acknowledged", booking_number=booking_number, when=acknowledged_at, facility=facility,
                  notice=notice, acknowledged_by=acknowledged_by)
