"""The published event schema admits what intake admits: never less (an
accepted event the schema calls invalid), and little more (schemathesis's
"valid" events were nearly all refused while the schema let instants run from
year 1 to 9999 and names be blank). Checked with Python's re and with the Rust
engine schemathesis validates with, since a pattern may read differently in each."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from models.event_schema import event_json_schema, years
from models.events import A_NUMBER_PATTERN, TEXT_PATTERN, BirthDate, Instant, InstantInRange, _a_number, _plain_text
from tests.builders import utc

NOW = utc(2026, 3, 11, 12)


def accepted(adapter: TypeAdapter, value, now=NOW) -> bool:
    try:
        adapter.validate_python(value, context={"now": now})
        return True
    except ValidationError:
        return False


def property_schema(event: str, *path: str, now=NOW) -> dict:
    node = event_json_schema(now)["$defs"][event]
    for name in path:
        node = node["properties"][name]
        node = event_json_schema(now)["$defs"][node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node
    return node


def matchers(pattern: str):
    rust = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
    python = re.compile(pattern)
    return lambda value: python.search(value) is not None, rust.is_valid


def text_accepted(value: str) -> bool:
    try:
        _plain_text(value)
        return True
    except ValueError:
        return False


def a_number_accepted(value: str) -> bool:
    try:
        _a_number(value)
        return True
    except ValueError:
        return False


@pytest.mark.parametrize("event,field", [("DetainerLifted", "note"), ("CustodyTransferred", "agency"),
                                         ("InmateReleased", "released_by")])
def test_free_text_fields_publish_the_text_rule(event, field):
    assert property_schema(event, field)["pattern"] == TEXT_PATTERN


def test_the_text_pattern_is_the_text_rule_for_every_character_in_every_position():
    by_python, by_rust = matchers(TEXT_PATTERN)
    for code in range(0x10000):
        if 0xD800 <= code < 0xE000:
            continue
        c = chr(code)
        for value in (c, "a" + c, c + "a", "a" + c + "b", " a" + c + "\u3000"):
            assert by_python(value) == by_rust(value) == text_accepted(value), (hex(code), value)


@given(st.text(max_size=12))
def test_the_text_pattern_is_the_text_rule_for_any_text(value):
    by_python, by_rust = matchers(TEXT_PATTERN)
    assert by_python(value) == by_rust(value) == text_accepted(value)


def test_years_match_exactly_their_range():
    for first, last in [(1969, 9000), (1900, 2026), (1970, 2026), (2026, 2026), (0, 9999)]:
        pattern = re.compile(f"^{years(first, last)}$")
        assert [y for y in range(10000) if pattern.match(f"{y:04d}")] == list(range(first, last + 1))


OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))


def rfc3339(local: datetime, separator: str = "T") -> str:
    text = local.isoformat(sep=separator)
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), OFFSETS,
       st.sampled_from(["T", "t", " "]))
def test_an_instant_the_schema_refuses_is_refused_by_intake(local, offset, separator):
    value = rfc3339(local.replace(tzinfo=offset), separator)
    for adapter, schema in [(TypeAdapter(Instant), property_schema("DetainerReceived", "occurred_at")),
                            (TypeAdapter(InstantInRange), property_schema("ReleaseScheduled", "expected_release_at"))]:
        by_python, by_rust = matchers(schema["pattern"])
        if accepted(adapter, value):
            assert by_python(value) and by_rust(value), value


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2026, 3, 10)), OFFSETS)
def test_past_instants_inside_the_schema_are_accepted(local, offset):
    value = rfc3339(local.replace(tzinfo=offset))
    assert re.search(property_schema("DetainerReceived", "occurred_at")["pattern"], value)
    assert accepted(TypeAdapter(Instant), value)


def test_the_schema_moves_its_latest_year_with_the_clock():
    later = utc(2031, 12, 31, 23, 50)
    pattern = property_schema("DetainerReceived", "occurred_at", now=later)["pattern"]
    assert re.search(pattern, "2031-06-01T00:00:00Z") and re.search(pattern, "2032-01-01T00:02:00+01:00")
    assert not re.search(pattern, "2032-01-02T00:00:00Z")
    assert not re.search(property_schema("DetainerReceived", "occurred_at")["pattern"], "2031-06-01T00:00:00Z")


@given(st.dates())
def test_a_birth_date_is_accepted_exactly_when_the_schema_admits_it_and_it_is_not_in_the_future(day):
    by_python, by_rust = matchers(property_schema("Subject", "dob")["pattern"])
    admitted = by_python(day.isoformat())
    assert admitted == by_rust(day.isoformat())
    assert accepted(TypeAdapter(BirthDate), day.isoformat()) == (admitted and day <= date(2026, 3, 12))


def test_the_a_number_pattern_is_the_a_number_rule_for_every_character_in_every_position():
    assert property_schema("DetainerDocument", "a_number")["pattern"] == A_NUMBER_PATTERN
    by_python, by_rust = matchers(A_NUMBER_PATTERN)
    for code in range(0x10000):
        if 0xD800 <= code < 0xE000:
            continue
        c = chr(code)
        for value in (c + "12345678", "A" + c + "12345678", "A1234" + c + "5678", "12345678" + c, c * 2 + "123456789"):
            assert by_python(value) == by_rust(value) == a_number_accepted(value), (hex(code), value)


@given(st.text(alphabet="Aa0123456789- \t\u3000\u0661x", max_size=14))
def test_the_a_number_pattern_is_the_a_number_rule_for_any_text(value):
    by_python, by_rust = matchers(A_NUMBER_PATTERN)
    assert by_python(value) == by_rust(value) == a_number_accepted(value)
