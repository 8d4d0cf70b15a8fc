import pytest

from models.events import EventRejected, parse_event
from tests.builders import detainer_event, release_event, service_event, utc

NOW = utc(2026, 3, 11, 12)


def reject(raw):
    with pytest.raises(EventRejected) as caught:
        parse_event(raw, NOW)
    return caught.value


def test_a_valid_detainer_parses_with_utc_instants_and_normalised_a_number():
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10), a_number="a-12345678")
    raw["occurred_at"] = "2026-03-11T06:00:00-04:00"
    event = parse_event(raw, NOW)
    assert event.occurred_at == utc(2026, 3, 11, 10)
    assert event.detainer.a_number == "A012345678"
    assert event.warrant.number == "W-77"


def test_warrant_and_subject_may_be_nested_in_the_detainer():
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw["detainer"]["warrant"] = raw.pop("warrant")
    raw["detainer"]["subject"] = raw.pop("subject")
    event = parse_event(raw, NOW)
    assert event.warrant.number == "W-77" and event.subject.identity_verified is True
    both = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    both["detainer"]["warrant"] = dict(both["warrant"])
    assert "warrant" in str(reject(both))


@pytest.mark.parametrize("mutate, field", [
    (lambda e: e.update(occurred_at="2026-03-11T10:00:00"), "occurred_at"),
    (lambda e: e.update(occurred_at="2026-03-11T12:06:00Z"), "occurred_at"),
    (lambda e: e.update(occurred_at="yesterday"), "occurred_at"),
    (lambda e: e.pop("booking_number"), "booking_number"),
    (lambda e: e.update(booking_number=""), "booking_number"),
    (lambda e: e.update(event_id="has space"), "event_id"),
    (lambda e: e["detainer"].update(form="I-999"), "detainer.form"),
    (lambda e: e["detainer"].update(requests_custody="yes"), "detainer.requests_custody"),
    (lambda e: e["detainer"].update(a_number="12"), "detainer.a_number"),
    (lambda e: e["detainer"].update(issued_at="2026-03-11T08:00:00"), "detainer.issued_at"),
    (lambda e: e["warrant"].update(form="I-213"), "warrant.form"),
    (lambda e: e["subject"].update(identity_verified=1), "subject.identity_verified"),
    (lambda e: e["subject"].update(name="  "), "subject.name"),
    (lambda e: e["subject"].update(name="x\u0000y"), "subject.name"),
    (lambda e: e["subject"].update(citizenship="?"), "subject.citizenship"),
    (lambda e: e.update(facility="no spaces allowed"), "facility"),
])
def test_bad_detainers_are_rejected_naming_the_field(mutate, field):
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    mutate(raw)
    assert reject(raw).field == field


def test_a_time_up_to_five_minutes_ahead_is_tolerated_as_clock_skew():
    raw = release_event("r1", "B1", utc(2026, 3, 11, 12, 4, 59))
    assert parse_event(raw, NOW).occurred_at == utc(2026, 3, 11, 12, 4, 59)


def test_unknown_or_missing_types_are_rejected():
    assert reject({"type": "detainer.cancelled"}).field == "type"
    assert reject({"event_id": "x"}).field == "type"
    assert reject([1, 2]).field == "event"


def test_the_officer_form_has_no_field_for_citizenship_questions():
    raw = service_event("s1", "B1", utc(2026, 3, 11, 10))
    raw["birthplace"] = "somewhere"
    assert reject(raw).field == "birthplace"


def test_release_reason_must_be_one_of_the_contract():
    raw = release_event("r1", "B1", utc(2026, 3, 11, 10), reason="escaped")
    assert reject(raw).field == "reason"


def test_the_reference_file_of_every_event_type_is_valid():
    import json
    from pathlib import Path

    from models.events import EVENT_TYPES

    lines = (Path(__file__).resolve().parents[2] / "examples" / "events.jsonl").read_text().splitlines()
    events = [parse_event(json.loads(line), None) for line in lines]
    assert {e.type for e in events} == set(EVENT_TYPES)
