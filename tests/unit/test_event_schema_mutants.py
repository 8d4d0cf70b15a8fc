"""The published schema at the edges of its bounds: the last day before 1970 in
an offset behind UTC, the first instant of a new year five minutes ahead, the
last instant before 9000, a birthday that is already today east of the date
line; each bound's description, the patterns' compact form, and references
that resolve (bench/results/mutation.md lists what these tests were written for)."""
import re

import pytest
from pydantic import TypeAdapter, ValidationError

from models.event_schema import bounds, event_json_schema, years
from models.events import BirthDate, Instant, InstantInRange
from tests.builders import utc

NOW = utc(2026, 3, 11, 12)


def field_schema(event: str, name: str, now=NOW) -> dict:
    return event_json_schema(now)["$defs"][event]["properties"][name]


def accepted(adapter: TypeAdapter, value: str, now=NOW) -> bool:
    try:
        adapter.validate_python(value, context={"now": now})
        return True
    except ValidationError:
        return False


def admitted(schema: dict, value: str) -> bool:
    return re.search(schema["pattern"], value) is not None


def test_years_are_written_one_alternative_per_whole_decade_century_or_millennium():
    assert years(1900, 1999) == "(?:19[0-9][0-9])"
    assert years(2000, 2009) == "(?:200[0-9])"
    assert years(2000, 2008) == "(?:2000|2001|2002|2003|2004|2005|2006|2007|2008)"
    assert years(1970, 9000) == ("(?:197[0-9]|198[0-9]|199[0-9]|2[0-9][0-9][0-9]|3[0-9][0-9][0-9]|4[0-9][0-9][0-9]|"
                                 "5[0-9][0-9][0-9]|6[0-9][0-9][0-9]|7[0-9][0-9][0-9]|8[0-9][0-9][0-9]|9000)")


def test_the_last_evening_of_1969_behind_utc_is_already_1970_and_both_say_so():
    value = "1969-12-31T23:30:00-01:00"  # 1970-01-01T00:30Z
    assert accepted(TypeAdapter(Instant), value) and admitted(field_schema("DetainerReceived", "occurred_at"), value)
    assert accepted(TypeAdapter(InstantInRange), value) and admitted(field_schema("ReleaseScheduled", "expected_release_at"), value)
    earlier = "1969-12-30T23:30:00-01:00"
    assert not accepted(TypeAdapter(Instant), earlier) and not admitted(field_schema("DetainerReceived", "occurred_at"), earlier)


def test_five_minutes_before_new_year_the_schema_admits_the_new_year():
    now = utc(2031, 12, 31, 23, 57)
    value = "2032-01-01T00:01:00Z"  # four minutes ahead: tolerated clock skew
    assert accepted(TypeAdapter(Instant), value, now=now)
    assert admitted(field_schema("DetainerReceived", "occurred_at", now=now), value)


def test_an_expected_release_may_fall_on_the_last_day_of_8999_and_never_in_9000():
    schema = field_schema("ReleaseScheduled", "expected_release_at")
    for value in ("8999-12-31T23:59:59Z", "9000-01-01T00:30:00+01:00"):
        assert accepted(TypeAdapter(InstantInRange), value) and admitted(schema, value), value
    for value in ("9000-06-01T00:00:00Z", "9000-01-01T00:00:00Z"):
        assert not accepted(TypeAdapter(InstantInRange), value) and not admitted(schema, value), value


def test_a_birthday_that_is_already_today_east_of_the_date_line_is_admitted():
    now = utc(2026, 12, 31, 12)  # 2027-01-01 02:00 at UTC+14
    schema = event_json_schema(now)["$defs"]["Subject"]["properties"]["dob"]
    assert accepted(TypeAdapter(BirthDate), "2027-01-01", now=now) and admitted(schema, "2027-01-01")
    assert not admitted(schema, "2028-01-01")


def test_each_bounded_field_describes_its_bounds():
    said = field_schema("DetainerReceived", "occurred_at")["description"]
    assert "1970" in said and "5 minutes" in said
    said = field_schema("ReleaseScheduled", "expected_release_at")["description"]
    assert "1970" in said and "9000" in said
    said = event_json_schema(NOW)["$defs"]["Subject"]["properties"]["dob"]["description"]
    assert "1900-01-01" in said and "future" in said


def test_an_unknown_kind_of_bounds_is_a_programming_error_naming_it():
    with pytest.raises(ValueError, match="'weekday'"):
        bounds("weekday", NOW)


def test_every_reference_of_the_schema_resolves_inside_it():
    schema = event_json_schema(NOW)
    refs = []

    def walk(node):
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k == "$ref")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    assert refs
    for ref in refs:
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in schema["$defs"], ref
