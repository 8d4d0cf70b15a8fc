"""Regressions from the fuzzers (tests/integration/test_fuzz_*.py): inputs that
once crashed intake or were read as something they do not say."""
import pytest

from models.events import EventRejected, parse_event
from tests.builders import detainer_event, scheduled_event, utc

NOW = utc(2026, 3, 11, 12)


def field_of(raw) -> str:
    with pytest.raises(EventRejected) as caught:
        parse_event(raw, NOW)
    return caught.value.field, caught.value.message


@pytest.mark.parametrize("instant", [
    "0001-01-01T00:19:01+19:51",   # once: OverflowError (year 0 in UTC), a 500 over HTTP
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "1969-12-31T23:59:59Z",
])
def test_instants_outside_the_representable_years_are_refused_naming_the_field(instant):
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw["occurred_at"] = instant
    assert field_of(raw) == ("occurred_at", "is out of range: must be between 1970 and 9000")
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw["detainer"]["issued_at"] = instant
    assert field_of(raw)[0] == "detainer.issued_at"


@pytest.mark.parametrize("expected", ["9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_an_expected_release_outside_the_representable_years_is_refused(expected):
    raw = scheduled_event("s1", "B1", utc(2026, 3, 11, 10), utc(2026, 3, 12))
    raw["expected_release_at"] = expected
    assert field_of(raw)[0] == "expected_release_at"


@pytest.mark.parametrize("value", [0, -2.8e-80, 1773230400, "1773230400", "2026-03-11", "2026-03-11T10:00Z", True,
                                   "２０２６-03-11T10:00:00Z"])
def test_a_time_must_be_written_as_rfc3339_not_a_number_or_a_bare_date(value):
    # A number was read as seconds since 1970 and accepted (found by schemathesis).
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw["occurred_at"] = value
    field, message = field_of(raw)
    assert field == "occurred_at" and "RFC 3339" in message


@pytest.mark.parametrize("value", [0, 631152000, "1990-01-02T00:00:00", "19900102", "02/01/1990"])
def test_a_date_of_birth_must_be_written_yyyy_mm_dd(value):
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw["subject"]["dob"] = value
    assert field_of(raw) == ("subject.dob", "must be a date written YYYY-MM-DD")


def test_the_written_forms_stay_accepted():
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw["occurred_at"] = "2026-03-11T06:00:00.123456789-04:00"
    raw["detainer"]["issued_at"] = "2026-03-11 09:00:00z"
    assert parse_event(raw, NOW).occurred_at.replace(microsecond=0) == utc(2026, 3, 11, 10)


@pytest.mark.parametrize("key, named", [
    ("0", '"0"'), ("", '""'), ("a: b", '"a: b"'), ("ü", '"\\u00fc"'), ("x" * 100, '"' + "x" * 40 + '..."'),
    ("nickname", "nickname"),
])
def test_a_made_up_field_is_named_quoted_so_the_reason_still_reads_field_colon_problem(key, named):
    # Found by the ingest fuzzer: '0: is not a field of this event type' reads as if field 0 existed.
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw[key] = 1
    assert field_of(raw) == (named, "is not a field of this event type")
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw["subject"][key] = 1
    assert field_of(raw) == (f"subject.{named}", "is not a field of this event type")


@pytest.mark.parametrize("dob,message", [
    ("2026-03-13", "is in the future"),
    ("2099-01-01", "is in the future"),
    ("1899-12-31", "is before 1900-01-01: a date of birth that early is a typing error"),
    ("0001-01-01", "is before 1900-01-01: a date of birth that early is a typing error"),
])
def test_a_date_of_birth_in_the_future_or_before_1900_is_refused_naming_the_field(dob, message):
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw["subject"]["dob"] = dob
    assert field_of(raw) == ("subject.dob", message)


@pytest.mark.parametrize("dob", ["1900-01-01", "1990-01-02", "2026-03-11", "2026-03-12"])
def test_a_plausible_date_of_birth_is_accepted(dob):
    # 2026-03-12 is already today in UTC+14 while it is 2026-03-11 12:00 UTC.
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw["subject"]["dob"] = dob
    assert parse_event(raw, NOW).subject.dob.isoformat() == dob


@pytest.mark.parametrize("a_number", ["A\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669", "A\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18"])
def test_an_a_number_in_other_digits_is_refused_not_kept_as_another_person(a_number):
    # Once accepted and stored as written: a different key from A123456789.
    raw = detainer_event("e1", "B1", utc(2026, 3, 11, 10))
    raw["detainer"]["a_number"] = a_number
    assert field_of(raw)[0] == "detainer.a_number"
