from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from models.domain import RosterEntry, Service
from models.policy import AnchorKind
from models.rules import (
    authority_problems,
    clock_anchor,
    hold_deadline,
    next_reminder_mark,
    roster_entry_at,
    service_problems,
    upcoming_reminder_at,
)
from tests.builders import detainer, policy, utc

NY = ZoneInfo("America/New_York")


def test_dst_fall_back_deadline_is_elapsed_time_not_wall_clock():
    # domain.md worked case: T0 2026-10-31 12:00 EDT gives 2026-11-02 11:00 EST.
    t0 = datetime(2026, 10, 31, 12, 0, tzinfo=NY)
    deadline = hold_deadline(t0, policy())
    assert deadline == utc(2026, 11, 2, 16, 0)
    assert deadline.astimezone(NY).replace(tzinfo=None) == datetime(2026, 11, 2, 11, 0)
    assert deadline.astimezone(NY).tzname() == "EST"


def test_dst_spring_forward_deadline():
    # domain.md worked case: T0 2026-03-07 12:00 EST gives 2026-03-09 13:00 EDT.
    t0 = datetime(2026, 3, 7, 12, 0, tzinfo=NY)
    deadline = hold_deadline(t0, policy())
    assert deadline == utc(2026, 3, 9, 17, 0)
    assert deadline.astimezone(NY).replace(tzinfo=None) == datetime(2026, 3, 9, 13, 0)
    assert deadline.astimezone(NY).tzname() == "EDT"


def test_deadline_uses_a_lower_configured_limit_to_the_second():
    t0 = utc(2026, 5, 1, 10, 0, 7)
    assert hold_deadline(t0, policy(limit="24h")) == utc(2026, 5, 2, 10, 0, 7)


def test_anchor_is_the_release_authorisation_under_hb318():
    pol = policy(anchor=[{"effective_from": "2025-10-01", "rule": "release_authorized"}])
    t0, kind = clock_anchor(pol, utc(2026, 1, 5, 15), utc(2026, 1, 1, 9))
    assert (t0, kind) == (utc(2026, 1, 5, 15), AnchorKind.RELEASE_AUTHORIZED)


def test_anchor_is_the_detainer_receipt_under_hb10():
    pol = policy(anchor=[{"effective_from": "2024-12-01", "rule": "detainer_received"},
                         {"effective_from": "2025-10-01", "rule": "release_authorized"}])
    t0, kind = clock_anchor(pol, utc(2025, 3, 2, 15), utc(2025, 3, 1, 9))
    assert (t0, kind) == (utc(2025, 3, 1, 9), AnchorKind.DETAINER_RECEIVED)


@pytest.mark.parametrize("mode, args, expected", [
    ("wso", {}, []),
    ("detainer", {}, []),
    ("notify_only", {}, ["notify-only"]),
    ("wso", {"form": "I-247G"}, ["notification only"]),
    ("wso", {"form": "I-247N"}, ["notification only"]),
    ("wso", {"form": "I-247D"}, ["not a current custody request"]),
    ("wso", {"requests_custody": False}, ["box 1"]),
    ("wso", {"warrant": False}, ["warrant"]),
    ("wso", {"identity_verified": False}, ["identity"]),
])
def test_hold_authority_needs_form_box1_warrant_and_verified_identity(mode, args, expected):
    problems = authority_problems(detainer(utc(2026, 3, 1), **args), policy(mode=mode))
    assert len(problems) == len(expected)
    for problem, words in zip(problems, expected):
        assert words in problem


ROSTER = [
    RosterEntry("W-1", "One", date(2025, 1, 1), date(2026, 3, 10), "RCJ", valid_from=utc(2025, 1, 1)),
]


def _service(at, badge="W-1", warrant="W-77", location="RCJ"):
    return Service(badge, warrant, location, at, "s1")


def _problems(service, roster=ROSTER, warrant="W-77", pol=None, facility="RCJ"):
    return service_problems(service, roster=roster, warrant_number=warrant, booked_facility=facility, policy=pol or policy())


def test_service_by_a_certified_officer_at_the_jail_is_valid():
    assert _problems(_service(utc(2026, 3, 10, 20))) == []


def test_certification_is_judged_on_the_local_service_date():
    # 2026-03-11 03:00Z is still 2026-03-10 in New York: certified that day.
    assert _problems(_service(utc(2026, 3, 11, 3))) == []
    # 2026-03-11 05:00Z is 2026-03-11 local: the certification expired the day before.
    [problem] = _problems(_service(utc(2026, 3, 11, 5)))
    assert problem.field == "officer_badge" and "not certified on 2026-03-11" in problem.message


def test_service_refusals_name_the_field():
    assert [p.field for p in _problems(_service(utc(2026, 3, 1), badge="W-9"))] == ["officer_badge"]
    assert [p.field for p in _problems(_service(utc(2026, 3, 1), warrant="W-78"))] == ["warrant_number"]
    assert [p.field for p in _problems(_service(utc(2026, 3, 1), location="ICE-ATL"))] == ["location"]
    assert [p.field for p in _problems(_service(utc(2026, 3, 1)), warrant=None)] == ["warrant_number"]
    two = policy(facilities=["RCJ", "ANNEX"])
    assert [p.field for p in _problems(_service(utc(2026, 3, 1), location="ANNEX"), pol=two)] == ["location", "officer_badge"]


def test_warrant_numbers_compare_without_case_or_spaces():
    assert _problems(_service(utc(2026, 3, 1), warrant=" w-77 ")) == []


def test_roster_history_decides_who_was_certified_at_the_time():
    renewed_at = utc(2026, 3, 20)
    history = [
        RosterEntry("W-1", "One", date(2025, 1, 1), date(2026, 3, 10), "RCJ", valid_from=utc(2025, 1, 1), valid_to=renewed_at),
        RosterEntry("W-1", "One", date(2026, 3, 15), date(2028, 3, 14), "RCJ", valid_from=renewed_at),
    ]
    # A service during the lapse is judged by the line of its time: not certified.
    assert _problems(_service(utc(2026, 3, 12, 15)), roster=history)[0].field == "officer_badge"
    assert _problems(_service(utc(2026, 3, 21, 15)), roster=history) == []


def test_an_officer_taken_off_the_roster_cannot_serve_and_late_loading_still_counts():
    removed = [RosterEntry("W-1", "One", date(2025, 1, 1), date(2027, 1, 1), "RCJ", valid_from=utc(2025, 1, 1), valid_to=utc(2026, 2, 1))]
    assert roster_entry_at(removed, "W-1", utc(2026, 2, 2)) is None
    loaded_late = [RosterEntry("W-1", "One", date(2025, 1, 1), date(2027, 1, 1), "RCJ", valid_from=utc(2026, 2, 5))]
    assert roster_entry_at(loaded_late, "W-1", utc(2026, 2, 2)) is loaded_late[0]
    readded = removed + [RosterEntry("W-1", "One", date(2025, 1, 1), date(2027, 1, 1), "RCJ", valid_from=utc(2026, 2, 10))]
    assert roster_entry_at(readded, "W-1", utc(2026, 2, 5)) is None


def test_only_the_nearest_passed_reminder_mark_is_sent():
    marks = (timedelta(hours=12), timedelta(hours=4), timedelta(hours=1))
    deadline = utc(2026, 3, 13, 12)
    assert next_reminder_mark(deadline, marks, deadline - timedelta(hours=13), None) is None
    assert next_reminder_mark(deadline, marks, deadline - timedelta(hours=12), None) == timedelta(hours=12)
    # After an outage both 12 h and 4 h have passed: only the 4 h mark goes out.
    assert next_reminder_mark(deadline, marks, deadline - timedelta(hours=3), None) == timedelta(hours=4)
    assert next_reminder_mark(deadline, marks, deadline - timedelta(hours=3), timedelta(hours=4)) is None
    assert upcoming_reminder_at(deadline, marks, timedelta(hours=4)) == deadline - timedelta(hours=1)
    assert upcoming_reminder_at(deadline, marks, timedelta(hours=1)) is None


def test_the_service_window_ends_at_its_close_once_the_reports_are_read_and_never_later_than_report_wait():
    from models.rules import service_window_end
    pol = policy(report_wait="20s")
    closes = utc(2026, 3, 11, 13)
    just_after = closes + timedelta(microseconds=1)  # a service at the close itself counts
    assert service_window_end(closes, None, pol) == just_after  # no report can wait outside the database
    assert service_window_end(closes, closes, pol) == just_after
    assert service_window_end(closes, closes + timedelta(seconds=5), pol) == just_after
    assert service_window_end(closes, closes - timedelta(days=1), policy(report_wait="0s")) == just_after
    assert service_window_end(closes, closes - timedelta(microseconds=1), pol) == closes + timedelta(seconds=20)
