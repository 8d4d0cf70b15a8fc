"""The staff's Run forms as events (custody/service/staff_forms.py): each form
becomes the event intake would take from any sender, its time the one typed
(jail time unless an offset is given) or the moment of Submit, its refusals in
the form's own field names, and a refusal changes nothing."""
from datetime import date, datetime, timedelta

import pytest

from custody.service.intake import ingest
from custody.service.staff_forms import SENDER, FormRefused, detainer_fields, form_event, record_form
from custody.service.views import find_case
from custody.store import schema as t
from models.domain import Status
from tests.builders import release_event, utc
from tests.integration.helpers import rows, snapshot
from tests.integration.test_intake import OPERATOR

SUBMITTED = utc(2026, 3, 11, 12)  # the conftest clock's now: 08:00 EDT in the policy's zone
PAPERS = dict(detainer_form="I-247A", requests_custody=True, a_number="A123456789", ice_event_number="EV1",
              issuing_office="ERO Atlanta", issued_at=datetime(2026, 3, 11, 7, 30), subject_name="José Ruiz",
              subject_dob=date(1990, 1, 2), identity_verified=True, warrant_form="I-200", warrant_number=" W-77 ")


def detainer_form(core, run="r1", when=None, **papers):
    fields = detainer_fields(core.policy, SUBMITTED, **{**PAPERS, **papers})
    return form_event("detainer.received", run, SUBMITTED, core.policy, "B1", when=when, **fields)


def case_of(core, booking="B1"):
    with core.uow() as uow:
        return find_case(uow, booking)


def test_a_detainer_entered_in_the_form_opens_the_case_as_the_same_event_would(core):
    result = record_form(core, detainer_form(core), SUBMITTED)
    assert result.result == "accepted" and result.case_id
    case = case_of(core)
    assert case.status is Status.AWAITING_RELEASE and case.detainer.warrant_number == "W-77"
    assert case.detainer.received_at == SUBMITTED  # left empty: the moment of Submit
    assert case.detainer.issued_at == utc(2026, 3, 11, 11, 30)  # 07:30 typed is jail time (EDT, UTC-4)
    [stored] = rows(core.engine, t.inbox)
    assert (stored["event_id"], stored["sender"]) == ("ui-r1", "prefect-ui")


def test_a_time_typed_with_an_offset_is_taken_as_written(core):
    when = datetime.fromisoformat("2026-03-11T06:15:00-05:00")
    record_form(core, detainer_form(core, when=when), SUBMITTED)
    assert case_of(core).detainer.received_at == utc(2026, 3, 11, 11, 15)


def test_a_refused_form_names_the_forms_field_and_changes_nothing(core):
    before = snapshot(core.engine)
    result = record_form(core, detainer_form(core, a_number="12-34"), SUBMITTED)
    assert result.result == "rejected" and result.reason.startswith("a_number: an A-number is 8 or 9 digits")
    result = record_form(core, detainer_form(core, run="r2", subject_name="\u202eJosé"), SUBMITTED)
    assert result.reason.startswith("subject_name: must not contain invisible or direction-changing characters")
    assert snapshot(core.engine) == before


def test_one_warrant_field_without_the_other_is_refused_naming_the_missing_one(core):
    with pytest.raises(FormRefused, match="^warrant_number: is required when the other warrant field is given"):
        detainer_form(core, warrant_number="  ")
    with pytest.raises(FormRefused, match="^warrant_form: is required"):
        detainer_form(core, warrant_form=None)
    fields = detainer_fields(core.policy, SUBMITTED, **{**PAPERS, "warrant_form": None, "warrant_number": None})
    assert "warrant" not in fields  # neither: a detainer without a warrant


def test_a_time_after_the_submission_is_refused_by_the_forms_field(core):
    record_form(core, detainer_form(core), SUBMITTED)
    later = SUBMITTED + timedelta(minutes=6)
    released = form_event("inmate.released", "r9", SUBMITTED, core.policy, "B1", when=later, released_by="Desk 2")
    result = record_form(core, released, SUBMITTED)
    assert (result.result, result.reason) == ("rejected", "released_at: is more than 5 minutes after the form was submitted")
    assert case_of(core).status is Status.AWAITING_RELEASE


def test_the_same_run_recorded_twice_is_one_fact(core):
    first = record_form(core, detainer_form(core), SUBMITTED)
    again = record_form(core, detainer_form(core), SUBMITTED)
    assert (first.result, again.result) == ("accepted", "duplicate")
    assert len(rows(core.engine, t.inbox)) == 1


def test_the_release_desk_closes_a_case_by_its_forms(core, clock):
    record_form(core, detainer_form(core), SUBMITTED)
    ingest(core, release_event("e-r", "B1", SUBMITTED), OPERATOR)
    clock.set(SUBMITTED + timedelta(minutes=40))
    lifted = form_event("detainer.lifted", "r3", clock.now(), core.policy, "B1", lifted_by="ERO duty officer",
                        note="I-247 cancelled by phone")
    assert record_form(core, lifted, clock.now()).result == "accepted"
    # typed in jail time, 20 minutes before the form was sent: the release counts from then
    out = form_event("inmate.released", "r4", clock.now(), core.policy, "B1",
                     when=datetime(2026, 3, 11, 8, 20), released_by="Desk 2")
    assert record_form(core, out, clock.now()).result == "accepted"
    case = case_of(core)
    assert case.status is Status.RELEASED and case.released_at == SUBMITTED + timedelta(minutes=20)


def test_a_pickup_by_ice_is_a_handover(core):
    record_form(core, detainer_form(core), SUBMITTED)
    pickup = form_event("custody.transferred", "r5", SUBMITTED, core.policy, "B1", agency="ICE", officer_name="Officer Lee")
    assert record_form(core, pickup, SUBMITTED).result == "accepted"
    assert case_of(core).status is Status.TRANSFERRED


def test_the_ui_may_report_only_what_people_report(core):
    assert "warrant.served" not in SENDER.event_types  # the officer's own form, with its window (officer_report.py)
    assert "release.authorized" not in SENDER.event_types and "release.scheduled" not in SENDER.event_types
