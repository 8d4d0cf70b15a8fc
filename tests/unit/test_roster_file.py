"""The roster file, all or nothing: one bad line refuses the whole file, and
the refusal names the line and the field."""
from datetime import date

import pytest

from models.domain import RosterEntry
from models.roster import RosterError, parse_roster
from tests.builders import policy

HEADER = "badge,name,certified_on,expires_on,facility\n"


def refused(text, pol=None):
    with pytest.raises(RosterError) as caught:
        parse_roster(text, pol or policy())
    return str(caught.value)


def test_each_line_becomes_an_officer_and_blank_lines_are_skipped():
    text = HEADER + " W-1 , Ana Diaz ,2025-01-01,2027-01-01,RCJ\n\n,,,,\nW-2,Bo Lee,2025-02-01,2025-02-01,\n"
    assert parse_roster(text, policy()) == [
        RosterEntry("W-1", "Ana Diaz", date(2025, 1, 1), date(2027, 1, 1), "RCJ"),
        RosterEntry("W-2", "Bo Lee", date(2025, 2, 1), date(2025, 2, 1), "RCJ"),  # one facility: the blank is it
    ]


def test_a_header_only_file_is_an_empty_roster():
    assert parse_roster(HEADER, policy()) == []


def test_what_each_refusal_says():
    assert refused("") == "roster: the file is empty (expected header badge,name,certified_on,expires_on,facility)"
    assert refused("badge,name\n") == "roster: header must be badge,name,certified_on,expires_on,facility (found badge,name)"
    assert refused(HEADER + "W-1,Ana\n") == "roster line 2: expected 5 fields, found 2"
    assert refused(HEADER + "W 1,Ana,2025-01-01,2027-01-01,RCJ\n") == "roster line 2: badge: 'W 1' must be letters, digits or '-'"
    assert refused(HEADER + ",Ana,2025-01-01,2027-01-01,RCJ\n") == "roster line 2: badge: '' must be letters, digits or '-'"
    assert refused(HEADER + "W-1,Ana,2025-01-01,2027-01-01,RCJ\nW-1,Bo,2025-01-01,2027-01-01,RCJ\n") == (
        "roster line 3: badge: 'W-1' appears twice")
    assert refused(HEADER + "W-1,,2025-01-01,2027-01-01,RCJ\n") == "roster line 2: name: required (at most 200 characters)"
    assert refused(HEADER + f"W-1,{'n' * 201},2025-01-01,2027-01-01,RCJ\n") == "roster line 2: name: required (at most 200 characters)"
    assert refused(HEADER + "W-1,Ana,2025-13-01,2027-01-01,RCJ\n") == "roster line 2: certified_on: '2025-13-01' is not a date (YYYY-MM-DD)"
    assert refused(HEADER + "W-1,Ana,2025-01-01,soon,RCJ\n") == "roster line 2: expires_on: 'soon' is not a date (YYYY-MM-DD)"
    assert refused(HEADER + "W-1,Ana,2025-01-02,2025-01-01,RCJ\n") == "roster line 2: expires_on: 2025-01-01 is before certified_on 2025-01-02"
    assert refused(HEADER + "W-1,Ana,2025-01-01,2027-01-01,XYZ\n") == (
        "roster line 2: facility: 'XYZ' is not one of this jail's facilities (RCJ)")


def test_the_edges_that_are_allowed():
    entries = parse_roster(HEADER + f"{'B' * 128},{'n' * 200},2025-01-01,2025-01-01,RCJ\n", policy())
    assert entries[0].badge == "B" * 128 and len(entries[0].name) == 200
    assert refused(HEADER + f"{'B' * 129},Ana,2025-01-01,2027-01-01,RCJ\n").startswith("roster line 2: badge:")


def test_with_several_facilities_a_blank_facility_stays_blank():
    pol = policy(facilities=["RCJ", "ANNEX"])
    [entry] = parse_roster(HEADER + "W-1,Ana,2025-01-01,2027-01-01,\n", pol)
    assert entry.facility == ""


def test_a_badge_of_dashes_alone_is_refused():
    assert refused(HEADER + "-,Ana,2025-01-01,2027-01-01,RCJ\n") == "roster line 2: badge: '-' must be letters, digits or '-'"
    assert refused(HEADER + "--,Ana,2025-01-01,2027-01-01,RCJ\n").startswith("roster line 2: badge:")


def test_a_facility_not_of_the_jail_is_refused_naming_every_facility():
    said = refused(HEADER + "W-1,Ana,2025-01-01,2027-01-01,XYZ\n", policy(facilities=["RCJ", "ANNEX"]))
    assert said.startswith("roster line 2: facility: 'XYZ'") and said.endswith("(RCJ, ANNEX)")
