"""What a case's fields mean after a later event: each stays true of the case
as it now stands (a lift, an earlier T0, a re-issued detainer, a release
reported after a handover)."""
from datetime import timedelta

from custody.service.views import case_summary
from models.case import Case
from models.domain import Notice, Service, Status
from tests.builders import detainer, open_case, policy, utc

H = timedelta(hours=1)
M = timedelta(minutes=1)
RECEIVED = utc(2026, 3, 1, 14)
T0 = utc(2026, 3, 10, 17)


def served(at, warrant="W-77"):
    return Service("W-1", warrant, "RCJ", at, "s1")


def held(pol):
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.record_service(served(T0 + 20 * M), [], pol, now=T0 + 20 * M)
    case.drain_effects()
    return case


def notices(case):
    return [e for e in case.drain_effects() if isinstance(e, Notice)]


def test_a_lift_during_the_hold_leaves_no_deadline_to_wait_for():
    pol = policy()
    case = held(pol)
    lifted = T0 + 2 * H
    case.lift(lifted, "ERO Atlanta", "no longer sought", now=lifted)
    assert case.status is Status.RELEASE_ORDERED and not case.holds_on_authority
    # The desk's 30 minutes run from the order, not from 30 minutes before a deadline 46 hours away.
    assert case.unconfirmed_page_at(pol) == lifted + 30 * M
    assert case.next_due_at(pol) == lifted + 30 * M
    assert case.release_due(pol) == (lifted + 30 * M, "the detainer's lift plus the desk's 30m")
    view = case_summary(case, pol, lifted + M)
    assert view["seconds_left"] is None and view["lifted_at"] == "2026-03-10T19:00:00Z"
    case.advance(lifted + 31 * M, pol)
    assert case.supervisors_paged_at == lifted + 31 * M
    assert case.minutes_past_due(pol, lifted + 31 * M) == 1


def test_a_lift_leaves_a_hold_ordered_at_its_deadline_paging_before_that_deadline():
    pol = policy()
    case = held(pol)
    case.advance(T0 + 46 * H, pol)  # the release order, two hours before the deadline
    assert case.status is Status.RELEASE_ORDERED and case.holds_on_authority
    assert case.unconfirmed_page_at(pol) == T0 + 48 * H - 30 * M


def test_an_earlier_t0_reported_after_the_release_order_withdraws_a_hold_served_outside_its_grace():
    pol = policy()
    case = held(pol)
    case.advance(T0 + 46 * H, pol)
    case.drain_effects()
    earlier = T0 - 2 * H  # the service at T0+20m is now 2h20m after T0: outside the 1h grace
    case.authorize_release(earlier, "bond_posted", pol, now=T0 + 46 * H + M)
    assert not case.hold_authorized and "after the grace" in case.no_hold_reason
    assert case.status is Status.RELEASE_ORDERED
    assert case.release_due(pol)[0] == earlier + H + 30 * M
    assert case.deadline_at == earlier + 48 * H
    assert case.unconfirmed_page_at(pol) == min(case.release_ordered_at + 30 * M, case.deadline_at - 30 * M)
    assert "t0-corrected" in [n.kind for n in notices(case)]


def test_an_earlier_t0_reported_after_the_release_counts_the_whole_time_held_without_authority():
    pol = policy()
    case = held(pol)
    left = T0 + 47 * H
    case.advance(T0 + 46 * H, pol)
    case.confirm_release(left, "Sgt Ames", pol, now=left)
    assert case.minutes_past_due(pol, left) == 0
    case.drain_effects()
    earlier = T0 - 2 * H
    case.authorize_release(earlier, "bond_posted", pol, now=left + H)
    assert case.status is Status.RELEASED and not case.hold_authorized
    due = earlier + H + 30 * M  # the corrected window's close plus the desk's allowance
    assert case.release_due(pol)[0] == due
    assert case.minutes_past_due(pol, left + H) == int((left - due).total_seconds() // 60)
    [withdrawn] = [e for e in case.drain_effects() if getattr(e, "action", "") == "hold_withdrawn"]
    assert "AFTER release was due" in withdrawn.reason


def test_an_earlier_t0_inside_the_service_window_says_the_new_time_to_serve_by_and_tells_the_officers():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.drain_effects()
    case.authorize_release(T0 - 30 * M, "bond_posted", pol, now=T0 + 5 * M)
    assert case.status is Status.RELEASE_AUTHORIZED
    assert "must serve the warrant by 2026-03-10T17:30:00Z" in case.status_reason
    sent = notices(case)
    assert [n.groups for n in sent if n.kind == "serve-warrant"] == [("wso",)]
    assert case.next_due_at(pol) - (T0 + 30 * M) < timedelta(milliseconds=1)


def test_a_reissued_detainer_with_another_warrant_does_not_rest_on_the_old_warrants_service():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.record_service(served(RECEIVED + H), [], pol, now=RECEIVED + H)
    reissued = detainer(RECEIVED + 2 * H, event_number="EV2")
    reissued = type(reissued)(**{**reissued.__dict__, "warrant_number": "W-88"})
    case.merge_detainer(reissued, pol)
    assert case.served_at is None and case.detainer.warrant_number == "W-88"
    assert "serve-warrant" in [n.kind for n in notices(case)]
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    assert case.status is Status.RELEASE_AUTHORIZED and not case.hold_authorized


def test_a_reissued_detainer_with_the_same_warrant_keeps_its_service():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.record_service(served(RECEIVED + H), [], pol, now=RECEIVED + H)
    case.merge_detainer(detainer(RECEIVED + 2 * H, event_number="EV2"), pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    assert case.status is Status.HELD and case.served_at == RECEIVED + H


def test_a_release_reported_after_the_handover_is_not_when_the_person_left():
    pol = policy()
    case = held(pol)
    case.transfer(T0 + 3 * H, "ICE", "Officer Diaz", pol, now=T0 + 3 * H)
    case.confirm_release(T0 + 4 * H, "Sgt Ames", pol, now=T0 + 4 * H)
    assert case.status is Status.TRANSFERRED and case.released_at is None
    assert case.left_custody_at == T0 + 3 * H


def test_a_release_reported_for_a_case_closed_without_a_hold_is_when_the_person_left():
    pol = policy()
    case = Case.open("2026-00002", "B2", "RCJ", detainer(RECEIVED, form="I-247G", warrant=False), pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    assert case.status is Status.CLOSED
    case.confirm_release(T0 + H, "Sgt Ames", pol, now=T0 + H)
    assert case.released_at == T0 + H


def test_an_earlier_t0_whose_window_has_already_closed_orders_no_service():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.drain_effects()
    case.authorize_release(T0 - 3 * H, "bond_posted", pol, now=T0 + 10 * M)  # its window closed two hours ago
    assert "serve-warrant" not in [n.kind for n in notices(case)]
    case.advance(T0 + 10 * M, pol)
    assert case.status is Status.RELEASE_ORDERED


def test_a_hold_withdrawn_after_the_person_left_is_told_to_supervisors_and_the_sheriff():
    pol = policy()
    case = held(pol)
    case.advance(T0 + 46 * H, pol)
    case.confirm_release(T0 + 47 * H, "Sgt Ames", pol, now=T0 + 47 * H)
    case.drain_effects()
    case.authorize_release(T0 - 2 * H, "bond_posted", pol, now=T0 + 48 * H)
    [told] = [n for n in notices(case) if n.kind == "hold-withdrawn"]
    assert set(told.groups) == {"supervisors", "sheriff"} and told.urgency == "urgent"
    from models.notices import render
    body = render(told, case, "supervisors", pol).body
    assert "no authority" in body and "release was due 2026-03-10" in body


def test_a_reissued_detainer_asks_for_no_service_where_service_makes_no_hold():
    pol = policy(mode="detainer")
    case = open_case(RECEIVED, pol)
    case.record_service(served(RECEIVED + H), [], pol, now=RECEIVED + H)
    case.drain_effects()
    reissued = detainer(RECEIVED + 2 * H, event_number="EV2")
    case.merge_detainer(type(reissued)(**{**reissued.__dict__, "warrant_number": "W-88"}), pol)
    assert "serve-warrant" not in [n.kind for n in notices(case)]
