"""The legal rules at their edges, and the facts their reasons must name: what
a supervisor reads in a case's record when a hold is refused or a service is
not counted (bench/results/mutation.md lists what these tests were written for)."""
from dataclasses import replace
from datetime import date

from models.domain import RosterEntry, Service
from models.rules import authority_problems, roster_entry_at, service_problems
from tests.builders import detainer, policy, utc

AT = utc(2026, 3, 1, 15)
ROSTER = [RosterEntry("W-1", "One", date(2025, 1, 1), date(2027, 1, 1), "RCJ", valid_from=utc(2025, 1, 1))]


def service(badge="W-1", warrant="W-77", location="RCJ", at=AT):
    return Service(badge, warrant, location, at, "s1")


def problems(svc, *, roster=ROSTER, warrant="W-77", booked="RCJ", pol=None):
    return {p.field: p.message for p in service_problems(svc, roster=roster, warrant_number=warrant, booked_facility=booked,
                                                           policy=pol or policy())}


# --- the papers -------------------------------------------------------------------------------


def test_each_problem_with_the_papers_names_the_form_it_is_about():
    [box1] = authority_problems(detainer(AT, requests_custody=False), policy())
    assert "box 1" in box1 and "I-247A" in box1
    [warrant] = authority_problems(detainer(AT, warrant=False), policy())
    assert "I-200 or I-205" in warrant


def test_a_warrant_needs_both_its_form_and_its_number():
    complete = detainer(AT)
    assert authority_problems(complete, policy()) == []
    for partial in (replace(complete, warrant_number=None), replace(complete, warrant_number=""),
                    replace(complete, warrant_form=None)):
        [missing] = authority_problems(partial, policy())
        assert "warrant" in missing


# --- the roster at the time of the service ----------------------------------------------------


def test_other_officers_lines_are_passed_over():
    mine = RosterEntry("W-1", "One", date(2025, 1, 1), date(2027, 1, 1), "RCJ", valid_from=utc(2025, 1, 1))
    other = RosterEntry("W-2", "Two", date(2025, 1, 1), date(2027, 1, 1), "RCJ", valid_from=utc(2025, 1, 1))
    assert roster_entry_at([other, mine], "W-1", AT) is mine


def test_a_line_ends_at_the_instant_it_was_replaced_and_its_successor_counts_from_that_instant():
    renewed_at = AT
    old = RosterEntry("W-1", "One", date(2025, 1, 1), date(2026, 3, 1), "RCJ", valid_from=utc(2025, 1, 1), valid_to=renewed_at)
    new = RosterEntry("W-1", "One", date(2026, 3, 1), date(2028, 3, 1), "RCJ", valid_from=renewed_at)
    assert roster_entry_at([old, new], "W-1", renewed_at) is new
    removed = [old]
    assert roster_entry_at(removed, "W-1", renewed_at) is None


def test_a_service_before_the_roster_was_loaded_counts_by_the_first_line_loaded_after_it():
    later = RosterEntry("W-1", "One", date(2025, 1, 1), date(2027, 1, 1), "RCJ", valid_from=AT.replace(day=10))
    first = RosterEntry("W-1", "One", date(2024, 6, 1), date(2026, 6, 1), "RCJ", valid_from=AT.replace(day=5))
    assert roster_entry_at([later, first], "W-1", AT) is first
    assert roster_entry_at([first, later], "W-1", AT) is first


def test_a_service_on_the_first_and_on_the_last_day_of_the_certification_counts():
    entry = RosterEntry("W-1", "One", date(2026, 3, 1), date(2026, 3, 10), "RCJ", valid_from=utc(2025, 1, 1))
    assert entry.certified_on_day(date(2026, 3, 1)) and entry.certified_on_day(date(2026, 3, 10))
    assert not entry.certified_on_day(date(2026, 2, 28)) and not entry.certified_on_day(date(2026, 3, 11))
    assert problems(service(at=utc(2026, 3, 1, 15)), roster=[entry]) == {}


# --- what a refused service says --------------------------------------------------------------


def test_a_service_outside_the_jail_names_the_place_and_the_jails_facilities():
    said = problems(service(location="ICE-ATL"), pol=policy(facilities=["RCJ", "ANNEX"]))
    assert "'ICE-ATL'" in said["location"] and "(RCJ, ANNEX)" in said["location"]


def test_a_service_at_another_facility_of_the_jail_names_both():
    two = policy(facilities=["RCJ", "ANNEX"])
    annex_wso = [replace(ROSTER[0], facility="ANNEX")]
    said = problems(service(location="ANNEX"), roster=annex_wso, pol=two)
    assert "booked at RCJ" in said["location"] and "ANNEX" in said["location"]
    said = problems(service(location="ANNEX"), pol=two, booked="ANNEX")
    assert "facility RCJ" in said["officer_badge"] and "ANNEX" in said["officer_badge"]


def test_a_badge_off_the_roster_is_named():
    said = problems(service(badge="W-9"))
    assert "'W-9'" in said["officer_badge"] and "roster" in said["officer_badge"]


def test_a_warrant_problem_says_whether_there_is_none_or_it_is_another():
    assert "no ICE warrant on file" in problems(service(), warrant=None)["warrant_number"]
    assert "does not match" in problems(service(warrant="W-78"))["warrant_number"]


def test_every_problem_with_the_papers_is_said_in_the_words_a_supervisor_reads():
    papers = detainer(AT, requests_custody=False, warrant=False, identity_verified=False)
    assert authority_problems(papers, policy(mode="notify_only")) == [
        "this jurisdiction is notify-only: it never holds on a detainer",
        "box 1 of the I-247A (request to maintain custody) is not checked",
        "no I-200 or I-205 warrant is attached",
        "the subject's identity has not been verified against the booking (supervisor review)",
    ]


def test_a_warrant_problem_is_said_in_full():
    assert problems(service(), warrant=None)["warrant_number"] == "there is no ICE warrant on file for this case to serve"
    assert problems(service(warrant="W-78"))["warrant_number"] == "does not match the warrant on file for this case"
