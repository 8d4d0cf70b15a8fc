"""Intake's refusals say which field and what is wrong with it (docs/interface.md:
"A rejection always starts with the field it is about"), and its limits hold to
the instant and to the character (bench/results/mutation.md lists what these
tests were written for)."""
import json
from datetime import timedelta

import pytest

from models.events import EVENT_TYPES, EventRejected, Refusal, field_name, parse_event
from tests.builders import detainer_event, release_event, scheduled_event, utc

NOW = utc(2026, 3, 11, 12)


def rejected(raw, now=NOW):
    with pytest.raises(EventRejected) as caught:
        parse_event(raw, now)
    return caught.value


def detainer_with(**subject):
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw["subject"].update(subject)
    return raw


def test_a_rejection_is_of_the_invalid_kind_unless_told_otherwise():
    assert EventRejected("occurred_at", "is wrong").code is Refusal.INVALID
    assert rejected([1]).code is Refusal.INVALID
    assert EventRejected("type", "may not", Refusal.NOT_PERMITTED).code is Refusal.NOT_PERMITTED


def test_what_is_not_an_event_object_or_has_no_type_is_refused_naming_the_types():
    said = rejected("detainer")
    assert (said.field, said.message) == ("event", "must be a JSON object")
    said = rejected({"event_id": "e1"})
    assert said.field == "type" and said.message == f"is required: one of {', '.join(EVENT_TYPES)}"
    said = rejected({"type": "detainer.cancelled"})
    assert said.field == "type" and said.message.startswith("unknown event type 'detainer.cancelled'")
    assert said.message.endswith(f"expected one of {', '.join(EVENT_TYPES)}")


def test_an_unknown_type_is_quoted_only_as_far_as_its_first_60_characters():
    said = rejected({"type": "x" * 100})
    assert repr("x" * 60) in said.message and "x" * 61 not in said.message


def test_a_missing_field_is_required():
    raw = release_event("r1", "B1", utc(2026, 3, 11, 10))
    del raw["reason"]
    assert (rejected(raw).field, rejected(raw).message) == ("reason", "is required")


def test_an_instant_without_an_offset_asks_for_one():
    raw = release_event("r1", "B1", utc(2026, 3, 11, 10))
    raw["occurred_at"] = "2026-03-11T10:00:00"
    said = rejected(raw)
    assert said.field == "occurred_at" and "needs a UTC offset" in said.message


def test_a_time_that_is_not_rfc3339_is_told_to_carry_an_offset():
    raw = release_event("r1", "B1", utc(2026, 3, 11, 10))
    raw["occurred_at"] = 1773230400
    assert "RFC 3339" in rejected(raw).message and "with an offset" in rejected(raw).message


def test_a_problem_with_the_event_as_a_whole_is_named_event():
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw["detainer"]["warrant"] = dict(raw["warrant"])  # the warrant both inside the detainer and beside it
    said = rejected(raw)
    assert said.field == "event" and "warrant" in said.message


# --- free text ---------------------------------------------------------------------------------


def test_free_text_may_not_be_blank_or_hold_control_characters():
    assert (rejected(detainer_with(name=" \t ")).field, rejected(detainer_with(name=" \t ")).message) == (
        "subject.name", "must not be empty")
    assert rejected(detainer_with(name="Ana\x07")).message == "must not contain control characters"


def test_an_invisible_character_is_named_by_its_code_point_and_its_position():
    said = rejected(detainer_with(name="A\u202eB"))
    assert said.field == "subject.name"
    assert "U+202E" in said.message and "position 2" in said.message
    assert "position 1" in rejected(detainer_with(name="\u200bAna")).message


def test_an_a_number_refusal_says_how_one_is_written():
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw["detainer"]["a_number"] = "A12"
    said = rejected(raw)
    assert said.field == "detainer.a_number" and "A-number" in said.message and "8 or 9 digits" in said.message


# --- the instants at their limits --------------------------------------------------------------


def test_an_instant_exactly_five_minutes_ahead_is_tolerated_and_one_beyond_is_not():
    assert parse_event(release_event("r1", "B1", NOW + timedelta(minutes=5)), NOW).occurred_at == NOW + timedelta(minutes=5)
    said = rejected(release_event("r1", "B1", NOW + timedelta(minutes=5, microseconds=1)))
    assert (said.field, said.message) == ("occurred_at", "is more than 5 minutes in the future")


def test_the_first_instant_of_1970_is_accepted_and_the_first_of_9000_is_not():
    first = utc(1970, 1, 1)
    assert parse_event(release_event("r1", "B1", first), NOW).occurred_at == first
    raw = scheduled_event("s1", "B1", utc(2026, 3, 11, 10), utc(2026, 3, 12))
    raw["expected_release_at"] = "8999-12-31T23:59:59.999999Z"
    assert parse_event(raw, NOW).expected_release_at.year == 8999
    raw["expected_release_at"] = "9000-01-01T00:00:00Z"
    said = rejected(raw)
    assert said.field == "expected_release_at" and said.message.startswith("is out of range")


# --- a field a sender made up, named in the reason ---------------------------------------------


@pytest.mark.parametrize("key, named", [
    ("a" * 40, "a" * 40),                                # a plain name up to 40 characters is as it is
    ("a" * 41, json.dumps("a" * 40 + "...")),            # a longer one is quoted and cut
    ("0" * 40, json.dumps("0" * 40)),                    # any other up to 40 characters is quoted whole
    ("0" * 41, json.dumps("0" * 40 + "...")),
])
def test_a_made_up_field_is_named_in_full_up_to_40_characters(key, named):
    assert field_name(key) == named


def test_a_malformed_a_number_is_refused_saying_how_one_is_written():
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw["detainer"]["a_number"] = "A12"
    said = rejected(raw)
    assert (said.field, said.message) == ("detainer.a_number",
                                          "an A-number is 8 or 9 digits (0-9), optionally written with a leading 'A'")


def test_an_instant_not_written_in_rfc_3339_is_refused_with_an_example():
    raw = release_event("r1", "B1", utc(2026, 3, 11, 10))
    raw["occurred_at"] = "yesterday"
    said = rejected(raw)
    assert (said.field, said.message) == (
        "occurred_at", "must be an RFC 3339 date-time string with an offset (e.g. 2026-03-11T14:05:00-04:00 or ...Z)")


def test_an_instant_without_an_offset_is_refused_asking_for_one():
    raw = release_event("r1", "B1", utc(2026, 3, 11, 10))
    raw["occurred_at"] = "2026-03-11T10:00:00"
    said = rejected(raw)
    assert (said.field, said.message) == ("occurred_at", "needs a UTC offset (e.g. 2026-03-11T14:05:00-04:00 or ...Z)")
