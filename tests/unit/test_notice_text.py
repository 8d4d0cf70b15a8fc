"""What each group reads: short, plain, and no more personal data than it
needs (the name to those who must pick the person out, the A-number to ICE,
the date of birth to nobody)."""
from datetime import timedelta

import pytest

from models.domain import Notice, Problem, Service, Urgency
from models.notices import NAME_GROUPS, render
from tests.builders import open_case, policy, utc

T0 = utc(2026, 3, 10, 17)
H = timedelta(hours=1)


def held_case():
    pol = policy()
    case = open_case(utc(2026, 3, 1, 14), pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.record_service(Service("W-1", "W-77", "RCJ", T0 + 20 * timedelta(minutes=1), "s1"), [], pol, now=T0)
    case.drain_effects()
    return case, pol


def test_ice_reads_the_name_the_a_number_the_status_and_the_clock():
    case, pol = held_case()
    message = render(Notice("hold-started", ("ice",)), case, "ice", pol)
    assert message.subject == "[2026-00001] Warrant served: hold started"
    assert message.body.splitlines() == [
        "Case 2026-00001, booking B1, facility RCJ.",
        "Person: Test Person.",
        "A-number A123456789, ICE event EV1.",
        "Status: held.",
        "Why: warrant served by certified WSO badge W-1 at 2026-03-10T17:20:00Z; deadline 2026-03-12T17:00:00Z.",
        "T0: 2026-03-10 13:00 EDT (2026-03-10T17:00:00Z).",
        "Hold deadline: 2026-03-12 13:00 EDT (2026-03-12T17:00:00Z).",
    ]


@pytest.mark.parametrize("group", ["supervisors", "sheriff", "records"])
def test_others_read_neither_the_name_nor_the_a_number(group):
    case, pol = held_case()
    body = render(Notice("hold-started", (group,)), case, group, pol).body
    assert "Test Person" not in body and "A123456789" not in body and "1990" not in body
    assert body.startswith("Case 2026-00001, booking B1, facility RCJ.\nStatus: held.")


def test_those_who_pick_the_person_out_read_the_name():
    assert NAME_GROUPS == {"ice", "release-desk", "wso"}
    case, pol = held_case()
    for group in ("release-desk", "wso"):
        body = render(Notice("release-order", (group,)), case, group, pol).body
        assert "Person: Test Person." in body and "A123456789" not in body


def test_an_urgent_notice_says_so_in_its_subject_once():
    case, pol = held_case()
    assert render(Notice("released", ("ice",), Urgency.URGENT), case, "ice", pol).subject == "URGENT [2026-00001] Released from the jail"
    assert render(Notice("released", ("ice",), Urgency.WARNING), case, "ice", pol).subject == "[2026-00001] Released from the jail"


def test_a_kind_without_a_subject_of_its_own_is_named_by_its_kind():
    case, pol = held_case()
    assert render(Notice("something-new", ("ice",)), case, "ice", pol).subject == "[2026-00001] something-new"


def test_the_lines_each_kind_adds():
    case, pol = held_case()
    case.expected_release_at = T0 + 50 * H

    def last(kind, mark="", group="ice"):
        return render(Notice(kind, (group,), mark=mark), case, group, pol).body.splitlines()[-1]

    assert last("advance-notice") == "Expected release: 2026-03-12 15:00 EDT (2026-03-12T19:00:00Z)."
    assert last("reminder", "4h") == "4h left before the hold deadline."
    assert last("release-order") == "Hold deadline: 2026-03-12 13:00 EDT (2026-03-12T17:00:00Z)."  # ICE is told, not asked
    assert last("release-order", group="release-desk") == (
        "What to do: release the person now unless another lawful hold applies; confirm the release "
        "(the confirm-release form or the jail system).")
    assert last("hold-started", group="release-desk") == "Hold deadline: 2026-03-12 13:00 EDT (2026-03-12T17:00:00Z)."


def test_the_officer_is_told_what_to_serve_by_when_and_where_to_report_it():
    pol = policy()
    case = open_case(utc(2026, 3, 1, 14), pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    body = render(Notice("serve-warrant", ("wso",)), case, "wso", pol).body
    assert body.splitlines()[-1] == ("What to do: serve the ICE warrant W-77 inside the jail by 2026-03-10 14:00 EDT "
                                     "(2026-03-10T18:00:00Z), then submit the form of the case's run (case-2026-00001, "
                                     "Resume) in the Prefect UI.")


def test_a_refused_service_says_why_and_until_when_it_can_be_corrected():
    pol = policy()
    case = open_case(utc(2026, 3, 1, 14), pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.drain_effects()
    case.record_service(Service("W-9", "W-77", "RCJ", T0 + 20 * timedelta(minutes=1), "s9"),
                        [Problem("officer_badge", "W-9 is not on the roster")], pol, now=T0 + timedelta(minutes=20))
    [notice] = [e for e in case.drain_effects() if isinstance(e, Notice)]
    body = render(notice, case, "supervisors", pol).body.splitlines()
    assert body[-2:] == ["Refused because: officer_badge: W-9 is not on the roster.",
                         "What to do: the officer may correct the report and submit it again by 2026-03-10 14:00 EDT "
                         "(2026-03-10T18:00:00Z); after that no hold may be made."]


def test_an_urgent_page_says_urgent_once_and_what_to_do():
    case, pol = held_case()
    message = render(Notice("deadline-passed", ("supervisors",), Urgency.URGENT), case, "supervisors", pol)
    assert message.subject == "URGENT [2026-00001] Hold deadline passed, release not confirmed"
    assert message.body.splitlines()[-1].startswith("What to do: the person is held past the legal limit")


def test_a_case_with_no_clock_yet_says_nothing_of_one():
    pol = policy()
    case = open_case(utc(2026, 3, 1, 14), pol)
    body = render(Notice("detainer-received", ("records",)), case, "records", pol).body
    assert "T0" not in body and "deadline" not in body
    assert body.splitlines() == ["Case 2026-00001, booking B1, facility RCJ.", "Status: awaiting_release."]
