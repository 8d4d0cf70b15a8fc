"""A prompt to the jail's staff is sent only while its purpose holds
(models/notices.py purpose_passed); ICE's notices always are."""
from datetime import timedelta

import pytest

from models.domain import Service
from models.notices import purpose_passed
from tests.builders import open_case, policy, utc

T0 = utc(2026, 3, 10, 17)
H = timedelta(hours=1)


def authorized():
    pol = policy()
    case = open_case(utc(2026, 3, 1, 14), pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.drain_effects()
    return case, pol


def held():
    case, pol = authorized()
    case.record_service(Service("W-1", "W-77", "RCJ", T0 + H / 3, "s1"), [], pol, now=T0 + H / 3)
    case.drain_effects()
    return case, pol


def test_a_request_to_serve_holds_only_while_the_window_is_open():
    case, pol = authorized()
    assert purpose_passed("serve-warrant", "wso", case, T0 + H / 2) is None
    case, pol = held()
    assert purpose_passed("serve-warrant", "wso", case, T0 + H) == "the case moved on (held: " + case.status_reason + ")"


def test_a_reminder_holds_while_the_person_is_held_and_the_deadline_ahead():
    case, pol = held()
    assert purpose_passed("reminder", "supervisors", case, case.deadline_at - H) is None
    assert purpose_passed("reminder", "supervisors", case, case.deadline_at) == (
        "the deadline it counted down to passed at 2026-03-12T17:00:00Z")
    case.advance(case.deadline_at - pol.release_order_lead, pol)
    assert purpose_passed("reminder", "supervisors", case, case.deadline_at - H).startswith("the case moved on (release_ordered: ")


@pytest.mark.parametrize("kind", ["release-order", "release-unconfirmed", "deadline-passed", "no-hold", "hold-withdrawn"])
def test_a_prompt_to_release_holds_until_the_case_ends(kind):
    case, pol = held()
    case.advance(case.deadline_at - pol.release_order_lead, pol)
    assert purpose_passed(kind, "release-desk", case, case.deadline_at) is None
    case.confirm_release(case.deadline_at - H, "Desk 2", pol, now=case.deadline_at - H)
    assert purpose_passed(kind, "release-desk", case, case.deadline_at).startswith("the case ended (released: ")


def test_ice_is_told_every_notice_however_late_and_facts_are_never_dropped():
    case, pol = held()
    case.confirm_release(T0 + 2 * H, "Desk 2", pol, now=T0 + 2 * H)
    for kind in ("release-order", "reminder", "serve-warrant", "deadline-passed"):
        assert purpose_passed(kind, "ice", case, T0 + 3 * H) is None
    for kind in ("hold-started", "released", "detainer-received", "escalation", "ops-failed"):
        assert purpose_passed(kind, "supervisors", case, T0 + 3 * H) is None


def test_a_request_to_serve_made_before_the_release_holds_until_the_person_is_held():
    # a re-issued detainer's new warrant, or a report refused before T0: found by mutation testing
    pol = policy()
    case = open_case(utc(2026, 3, 1, 14), pol)
    for kind in ("serve-warrant", "service-refused"):
        assert purpose_passed(kind, "wso", case, T0 - H) is None
