"""Every step a case takes, as its audit trail and its notifications record it:
the action's name, the statuses before and after, who is told, how urgently,
and the facts its reason must carry. The record is what a court, a supervisor
or ICE reads afterwards, so each entry is held to the rule it records."""
from datetime import timedelta

import pytest

from models.case import Case
from models.domain import Notice, Problem, Service, Status, Transition
from models.rules import NEVER_READ
from tests.builders import detainer, open_case, policy, utc

H = timedelta(hours=1)
M = timedelta(minutes=1)
US = timedelta(microseconds=1)
RECEIVED = utc(2026, 3, 1, 14)
T0 = utc(2026, 3, 10, 17)
DEADLINE = T0 + 48 * H
ALL = ("ice", "release-desk", "supervisors", "wso")
AR, RA, HELD, RO = Status.AWAITING_RELEASE, Status.RELEASE_AUTHORIZED, Status.HELD, Status.RELEASE_ORDERED


def record(case):
    """('T', action, before, after) and ('N', kind, groups, urgency, mark), in order."""
    out = []
    for e in case.drain_effects():
        if isinstance(e, Transition):
            out.append(("T", e.action, e.status_before, e.status_after))
        else:
            out.append(("N", e.kind, e.groups, str(e.urgency), e.mark))
    return out


def reasons(case):
    return [e.reason for e in case.effects if isinstance(e, Transition)]


def last_reason(case):
    return reasons(case)[-1]


def served(at, badge="W-1", event_id="s1"):
    return Service(badge, "W-77", "RCJ", at, event_id)


def authorized(pol=None):
    pol = pol or policy()
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.drain_effects()
    return case, pol


def held(pol=None):
    case, pol = authorized(pol)
    case.record_service(served(T0 + 20 * M), [], pol, now=T0 + 20 * M)
    case.drain_effects()
    return case, pol


def ordered(pol=None):
    case, pol = held(pol)
    case.advance(DEADLINE - 2 * H, pol)
    case.drain_effects()
    return case, pol


# --- opening --------------------------------------------------------------------------------


def test_opening_records_the_detainer_and_tells_records_and_supervisors():
    pol = policy()
    case = Case.open("2026-00001", "B1", "RCJ", detainer(RECEIVED), pol)
    assert reasons(case) == ["detainer I-247A received from ERO Atlanta"]
    assert record(case) == [("T", "case_opened", None, AR), ("N", "detainer-received", ("records", "supervisors"), "info", "")]


def test_an_unverified_identity_asks_supervisors_to_review():
    pol = policy()
    case = Case.open("2026-00001", "B1", "RCJ", detainer(RECEIVED, identity_verified=False), pol)
    assert "it cannot authorise a hold: " in last_reason(case) and "identity" in last_reason(case)
    assert record(case)[-1] == ("N", "identity-review", ("supervisors",), "warning", "")


def test_a_detainer_for_a_person_already_released_closes_with_no_hold():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.close_already_released(RECEIVED - H, now=RECEIVED)
    assert case.released_at == RECEIVED - H and case.closed_at == RECEIVED
    assert case.no_hold_reason == last_reason(case) == "the person had already been released when the detainer arrived"
    assert record(case) == [("T", "no_hold", AR, Status.CLOSED), ("N", "already-released", ("ice", "records"), "info", "")]


def test_a_reissued_detainer_governs_a_case_still_awaiting_release():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.merge_detainer(detainer(RECEIVED + H, event_number="EV2"), pol)
    assert case.detainer.ice_event_number == "EV2"
    assert last_reason(case) == "re-issued detainer I-247A (event EV2) merged; it now governs the case"
    assert record(case) == [("T", "detainer_merged", AR, AR)]


def test_a_reissued_detainer_leaves_a_running_clock_as_it_is_and_tells_supervisors():
    case, pol = held()
    case.merge_detainer(detainer(RECEIVED + H, event_number="EV2"), pol)
    assert case.detainer.ice_event_number == "EV1"
    assert last_reason(case) == "re-issued detainer I-247A (event EV2) merged; the running clock is unchanged"
    assert record(case) == [("T", "detainer_merged", HELD, HELD), ("N", "detainer-reissued", ("supervisors",), "info", "EV2")]


# --- the release authorisation ---------------------------------------------------------------


def test_t0_in_wso_mode_notifies_ice_and_asks_an_officer_to_serve_within_the_grace():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0 + M)
    assert (case.release_reason, case.anchor_rule) == ("bond_posted", "release_authorized")
    assert last_reason(case) == "T0 2026-03-10T17:00:00Z (bond_posted); a certified WSO must serve the warrant by 2026-03-10T18:00:00Z"
    assert record(case) == [("N", "release-notice", ("ice",), "info", ""), ("T", "release_authorized", AR, RA),
                            ("N", "serve-warrant", ("wso",), "warning", "")]


def test_t0_without_authority_closes_at_once_and_tells_the_desk_and_supervisors():
    pol = policy()
    case = open_case(RECEIVED, pol, form="I-247G", requests_custody=False, warrant=False)
    case.authorize_release(T0, "bond_posted", pol, now=T0 + M)
    assert case.status is Status.CLOSED and case.closed_at == T0 + M and not case.hold_authorized
    assert last_reason(case) == f"no authority to hold: {case.no_hold_reason}"
    assert record(case) == [("N", "release-notice", ("ice",), "info", ""), ("T", "no_hold", AR, Status.CLOSED),
                            ("N", "no-hold", ("release-desk", "supervisors"), "warning", "")]


def test_t0_after_the_limit_counted_from_the_detainer_has_run_out_holds_nobody():
    pol = policy(anchor=[{"effective_from": "2024-12-01", "rule": "detainer_received"}])
    case = open_case(RECEIVED, pol)
    case.authorize_release(RECEIVED + 49 * H, "bond_posted", pol, now=RECEIVED + 49 * H)
    assert case.status is Status.CLOSED
    assert "the 48h limit counted from detainer_received ran out before the release" in case.no_hold_reason


def test_t0_in_detainer_mode_starts_the_hold_at_once():
    pol = policy(mode="detainer")
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "court_order", pol, now=T0)
    assert case.hold_authorized and case.hold_started_at == T0
    assert last_reason(case) == ("T0 2026-03-10T17:00:00Z; detainer mode holds on the I-247A with its warrant; "
                                 "deadline 2026-03-12T17:00:00Z")
    assert record(case) == [("N", "release-notice", ("ice",), "info", ""), ("T", "hold_started", AR, HELD),
                            ("N", "hold-started", ("ice", "release-desk"), "info", "")]


def test_a_service_before_t0_starts_the_hold_at_t0():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.record_service(served(T0 - 3 * H), [], pol, now=T0 - 3 * H)
    assert last_reason(case) == "warrant served by badge W-1 before the release authorisation; the hold starts at T0 if authorised"
    assert record(case) == [("T", "warrant_served", AR, AR)]
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    assert case.hold_started_at == T0
    assert last_reason(case) == ("T0 2026-03-10T17:00:00Z; warrant already served at 2026-03-10T14:00:00Z by badge W-1; "
                                 "deadline 2026-03-12T17:00:00Z")


def test_a_second_later_release_authorisation_is_only_recorded():
    case, pol = held()
    case.authorize_release(T0 + H, "other", pol, now=T0 + H)
    assert case.t0 == T0
    assert last_reason(case) == "release authorisation at 2026-03-10T18:00:00Z recorded; the case was already held"
    assert record(case) == [("T", "release_authorization_recorded", HELD, HELD)]


def test_an_earlier_t0_during_the_hold_moves_the_deadline_and_tells_supervisors_and_ice():
    case, pol = held()
    case.authorize_release(T0 - 30 * M, "bond_posted", pol, now=T0 + H)
    assert case.deadline_at == DEADLINE - 30 * M and case.release_order_at == DEADLINE - 30 * M - 2 * H
    assert last_reason(case) == ("earlier release authorisation at 2026-03-10T16:30:00Z: T0 moved to 2026-03-10T16:30:00Z, "
                                 "deadline now 2026-03-12T16:30:00Z")
    assert record(case) == [("T", "t0_corrected", HELD, HELD),
                            ("N", "t0-corrected", ("supervisors", "ice"), "warning", "2026-03-10T16:30:00Z")]


# --- the officer's service ------------------------------------------------------------------


def test_a_valid_service_in_the_grace_starts_the_hold():
    case, pol = authorized()
    case.record_service(served(T0 + 20 * M), [], pol, now=T0 + 21 * M)
    assert (case.served_at, case.served_by, case.service_event_id, case.hold_started_at) == (T0 + 20 * M, "W-1", "s1", T0 + 20 * M)
    assert last_reason(case) == ("warrant served by certified WSO badge W-1 at 2026-03-10T17:20:00Z; "
                                 "deadline 2026-03-12T17:00:00Z")
    assert record(case) == [("T", "hold_started", RA, HELD), ("N", "hold-started", ("ice", "release-desk"), "info", "")]


def test_a_refused_service_changes_nothing_but_is_recorded_and_told_to_supervisors():
    case, pol = authorized()
    case.record_service(served(T0 + 20 * M), [Problem("officer_badge", "badge 'W-1' is not on the WSO roster")], pol, now=T0 + 21 * M)
    assert case.status is RA and case.served_at is None
    assert last_reason(case) == ("report by badge W-1 of a service at 2026-03-10T17:20:00Z refused: "
                                 "officer_badge: badge 'W-1' is not on the WSO roster")
    assert record(case) == [("T", "service_refused", RA, RA), ("N", "service-refused", ("supervisors",), "warning", "s1")]


def test_a_refused_service_without_an_event_id_is_told_once_per_service_time():
    case, pol = authorized()
    case.record_service(served(T0 + 20 * M, event_id=None), [Problem("location", "not here")], pol, now=T0 + 21 * M)
    assert record(case)[-1] == ("N", "service-refused", ("supervisors",), "warning", "2026-03-10T17:20:00Z")


def test_a_second_service_is_not_counted_again():
    case, pol = held()
    case.record_service(served(T0 + 30 * M, badge="W-2"), [], pol, now=T0 + 30 * M)
    assert case.served_by == "W-1"
    assert last_reason(case) == "the warrant was already served at 2026-03-10T17:20:00Z by badge W-1; not counted again"
    assert record(case) == [("T", "service_already_recorded", HELD, HELD)]


def test_a_service_after_the_grace_authorises_no_hold_and_is_told_to_supervisors():
    case, pol = authorized()
    case.record_service(served(T0 + 2 * H), [], pol, now=T0 + 2 * H)
    assert case.status is RA and not case.hold_authorized
    assert last_reason(case) == ("served at 2026-03-10T19:00:00Z, after the 1h grace: "
                                 "a late service never moves T0 and authorises no hold")
    assert record(case) == [("T", "late_service", RA, RA), ("N", "late-service", ("supervisors",), "warning", "")]


def test_a_service_after_the_release_order_holds_nobody():
    case, pol = authorized()
    case.advance(T0 + H + US, pol)
    case.drain_effects()
    case.record_service(served(T0 + 70 * M), [], pol, now=T0 + 70 * M)
    assert case.status is RO and not case.hold_authorized
    assert last_reason(case) == "warrant served by badge W-1 after the release was ordered: no hold"
    assert record(case) == [("T", "service_after_release_order", RO, RO), ("N", "late-service", ("supervisors",), "warning", "")]


def test_a_service_in_detainer_mode_is_recorded_as_not_required():
    case, pol = authorized(policy(mode="detainer"))
    case.record_service(served(T0 + 20 * M), [], pol, now=T0 + 20 * M)
    assert last_reason(case) == "warrant served by badge W-1 (not required in detainer mode)"
    assert record(case) == [("T", "warrant_served", HELD, HELD)]


def test_a_service_after_the_case_closed_is_recorded_only():
    case, pol = ordered()
    case.confirm_release(DEADLINE - H, "Sgt Ames", pol, now=DEADLINE - H)
    case.drain_effects()
    case2, _ = authorized()
    case2.advance(T0 + H + US, pol)
    case2.confirm_release(T0 + 2 * H, "Sgt Ames", pol, now=T0 + 2 * H)
    case2.drain_effects()
    case2.record_service(served(T0 + 3 * H), [], pol, now=T0 + 3 * H)
    assert case2.served_at is None
    assert last_reason(case2) == "service by badge W-1 at 2026-03-10T20:00:00Z recorded; the case was already released"
    assert record(case2) == [("T", "service_after_close", Status.RELEASED, Status.RELEASED)]


def test_the_copy_of_the_detainer_is_recorded_once():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.record_copy_served(RECEIVED + H, "Deputy Ruiz", "Spanish")
    assert (case.copy_served_at, case.copy_served_by, case.copy_language) == (RECEIVED + H, "Deputy Ruiz", "Spanish")
    assert last_reason(case) == "copy of the detainer given to the person by Deputy Ruiz in Spanish"
    assert record(case) == [("T", "detainer_copy_served", AR, AR)]
    case.record_copy_served(RECEIVED + 2 * H, "Deputy Lee", "English")
    assert case.copy_served_by == "Deputy Ruiz"
    assert last_reason(case) == "copy already recorded as served at 2026-03-01T15:00:00Z"
    assert record(case) == [("T", "detainer_copy_recorded_again", AR, AR)]


# --- a scheduled release ------------------------------------------------------------------


@pytest.mark.parametrize("ahead, urgency, short", [(48 * H, "info", False), (48 * H - M, "warning", True)])
def test_a_scheduled_release_gives_ice_advance_notice_flagged_when_short(ahead, urgency, short):
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.schedule_release(RECEIVED + ahead, pol, now=RECEIVED)
    assert case.expected_release_at == RECEIVED + ahead
    expected = f"release expected at {(RECEIVED + ahead).isoformat().replace('+00:00', 'Z')}; advance notice to ICE"
    assert last_reason(case) == expected + (" (less than the advance-notice period)" if short else "")
    assert record(case) == [("T", "release_scheduled", AR, AR),
                            ("N", "advance-notice", ("ice",), urgency, (RECEIVED + ahead).isoformat().replace("+00:00", "Z"))]


def test_a_schedule_after_t0_is_only_recorded():
    case, pol = held()
    case.schedule_release(T0 + 5 * H, pol, now=T0 + H)
    assert last_reason(case) == "expected release 2026-03-10T22:00:00Z recorded; the case is held"
    assert record(case) == [("T", "release_schedule_recorded", HELD, HELD)]


# --- the passage of time ------------------------------------------------------------------


def test_the_window_closing_without_service_orders_release_and_tells_supervisors():
    case, pol = authorized()
    case.advance(T0 + H, pol)  # at the very close a service still counts: nothing yet
    assert record(case) == []
    case.advance(T0 + H + US, pol)
    assert case.no_hold_reason == "no certified WSO served the warrant within 1h of T0"
    assert case.release_ordered_at == T0 + H + US
    assert last_reason(case) == case.release_order_reason == "no certified WSO served the warrant within 1h of T0: no hold (rule 6)"
    assert record(case) == [("N", "no-service", ("supervisors",), "warning", ""), ("T", "release_ordered", RA, RO),
                            ("N", "release-order", ("release-desk", "supervisors", "ice"), "warning", "")]


def test_the_window_decided_before_the_forms_were_read_says_so():
    case, pol = authorized()
    case.advance(T0 + H + 31 * US, pol, reports_read_through=NEVER_READ)
    assert record(case) == []  # the forms' wait (30 s) has not passed
    case.advance(T0 + H + 30 * timedelta(seconds=1) + US, pol, reports_read_through=NEVER_READ)
    assert last_reason(case).endswith("(officers' reports in the Prefect UI have not been read (no reader has run); "
                                      "decided without them 30s after the window closed)")
    case2, _ = authorized()
    case2.advance(T0 + 2 * H, pol, reports_read_through=T0 + 50 * M)
    assert last_reason(case2).endswith("(officers' reports in the Prefect UI could not be read after 2026-03-10T17:50:00Z; "
                                       "decided without them 30s after the window closed)")


def test_the_window_closes_when_the_forms_are_read_past_it():
    case, pol = authorized()
    case.advance(T0 + H + 2 * US, pol, reports_read_through=T0 + H + US)
    assert case.status is RO and last_reason(case) == "no certified WSO served the warrant within 1h of T0: no hold (rule 6)"


@pytest.mark.parametrize("before, mark, urgency", [(12 * H, "12h", "info"), (4 * H, "4h", "info"), (H, "1h", "warning")])
def test_reminders_go_to_ice_and_supervisors_at_each_mark(before, mark, urgency):
    case, pol = held()
    case.advance(DEADLINE - before, pol)
    assert case.last_reminder_mark == before
    assert last_reason(case) == f"{mark} before the deadline 2026-03-12T17:00:00Z"
    assert ("N", "reminder", ("ice", "supervisors"), urgency, mark) in record(case)


def test_no_reminder_before_the_first_mark_and_each_mark_once():
    case, pol = held()
    case.advance(DEADLINE - 12 * H - M, pol)
    assert record(case) == []
    case.advance(DEADLINE - 12 * H, pol)
    case.drain_effects()
    case.advance(DEADLINE - 11 * H, pol)
    assert record(case) == []


def test_the_release_order_goes_out_its_lead_before_the_deadline():
    case, pol = held()
    case.advance(DEADLINE - 2 * H - US, pol)
    assert case.status is HELD
    case.advance(DEADLINE - 2 * H, pol)
    assert case.release_ordered_at == DEADLINE - 2 * H
    assert case.release_order_reason == "release-order time (2h before the deadline)"
    assert ("T", "release_ordered", HELD, RO) in record(case)


def test_a_release_order_made_at_the_deadline_says_the_deadline_is_reached():
    case, pol = held()
    case.advance(DEADLINE, pol)
    assert case.release_order_reason == "the hold deadline is reached"


def test_an_unconfirmed_release_pages_supervisors_and_the_sheriff_then_again_at_the_deadline():
    case, pol = ordered()
    case.advance(DEADLINE - 30 * M - US, pol)
    assert [e for e in record(case) if e[0] == "T" and e[1] != "reminder"] == []
    case.advance(DEADLINE - 30 * M, pol)
    assert case.supervisors_paged_at == DEADLINE - 30 * M
    assert last_reason(case) == "release not confirmed by the release desk"
    assert [e for e in record(case) if e[1] != "reminder"] == [
        ("T", "supervisors_paged", RO, RO), ("N", "release-unconfirmed", ("supervisors", "sheriff"), "urgent", "")]
    case.advance(DEADLINE, pol)
    assert case.overdue_alerted_at == DEADLINE
    assert last_reason(case) == "the hold deadline has passed and the release is not confirmed"
    assert [e for e in record(case) if e[1] != "reminder"] == [
        ("T", "deadline_passed_unconfirmed", RO, RO), ("N", "deadline-passed", ("supervisors", "sheriff"), "urgent", "")]
    case.advance(DEADLINE + H, pol)
    assert record(case) == []


# --- the person leaving ---------------------------------------------------------------------


def test_a_release_in_time_is_told_to_ice_and_supervisors():
    case, pol = ordered()
    case.confirm_release(DEADLINE - H, "Sgt Ames", pol, now=DEADLINE - H)
    assert case.released_at == DEADLINE - H and case.left_custody_at == DEADLINE - H
    assert last_reason(case) == "released by Sgt Ames"
    assert record(case) == [("T", "released", RO, Status.RELEASED), ("N", "released", ("ice", "supervisors"), "info", "")]


def test_a_release_after_the_deadline_says_how_late_and_is_urgent():
    case, pol = ordered()
    case.confirm_release(DEADLINE + 90 * M, "Sgt Ames", pol, now=DEADLINE + 90 * M)
    assert last_reason(case) == "released by Sgt Ames; 1h30m AFTER release was due (the hold deadline, 2026-03-12T17:00:00Z)"
    assert record(case)[-1] == ("N", "released", ("ice", "supervisors"), "urgent", "")


def test_a_release_reported_for_an_ended_case_is_recorded():
    case, pol = ordered()
    case.confirm_release(DEADLINE - H, "Sgt Ames", pol, now=DEADLINE - H)
    case.drain_effects()
    case.confirm_release(DEADLINE - 50 * M, "Sgt Lee", pol, now=DEADLINE - 50 * M)
    assert case.released_at == DEADLINE - H
    assert last_reason(case) == ("left the jail at 2026-03-12T16:10:00Z (released by Sgt Lee); "
                                 "the case was already released")
    assert record(case) == [("T", "release_recorded", Status.RELEASED, Status.RELEASED)]


def test_a_pickup_by_ice_is_told_to_everyone_involved():
    case, pol = held()
    case.transfer(T0 + 3 * H, "ICE", "Officer Diaz", pol, now=T0 + 3 * H)
    assert (case.transferred_at, case.transferred_to) == (T0 + 3 * H, "ICE")
    assert last_reason(case) == "handed to ICE (Officer Diaz)"
    assert record(case) == [("T", "transferred", HELD, Status.TRANSFERRED), ("N", "picked-up", ALL, "info", "")]


def test_a_transfer_elsewhere_tells_ice_where_the_person_went():
    case, pol = held()
    case.transfer(T0 + 3 * H, "Wake County", "Deputy Bell", pol, now=T0 + 3 * H)
    assert last_reason(case) == "handed to Wake County (Deputy Bell)"
    assert record(case) == [("T", "transferred", HELD, Status.TRANSFERRED), ("N", "transferred-out", ("ice", "supervisors"), "info", "")]


def test_ice_arriving_after_the_case_closed_is_recorded_as_an_attempt():
    case, pol = ordered()
    case.confirm_release(DEADLINE - H, "Sgt Ames", pol, now=DEADLINE - H)
    case.drain_effects()
    case.transfer(DEADLINE + H, "ICE", "Officer Diaz", pol, now=DEADLINE + H)
    assert case.transferred_at is None and case.status is Status.RELEASED
    assert last_reason(case) == "ICE (Officer Diaz) came at 2026-03-12T18:00:00Z; the case was already released"
    assert record(case) == [("T", "transfer_after_close", Status.RELEASED, Status.RELEASED),
                            ("N", "pickup-after-close", ("supervisors",), "warning", "2026-03-12T18:00:00Z")]


# --- a lift ----------------------------------------------------------------------------------


def test_a_lift_before_t0_closes_the_case():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.lift(RECEIVED + H, "ERO Atlanta", "no longer sought", now=RECEIVED + H)
    assert case.status is Status.CLOSED and case.closed_at == RECEIVED + H and case.lifted_at == RECEIVED + H
    assert case.no_hold_reason == "detainer lifted before T0"
    assert last_reason(case) == "lifted by ERO Atlanta before T0: no longer sought"
    assert record(case) == [("T", "detainer_lifted", AR, Status.CLOSED), ("N", "lifted", ALL, "info", "")]


def test_a_lift_during_the_hold_orders_release_at_once():
    case, pol = held()
    case.lift(T0 + 2 * H, "ERO Atlanta", "no longer sought", now=T0 + 2 * H + M)
    assert case.release_ordered_at == T0 + 2 * H + M
    assert case.release_order_reason == "detainer lifted by ERO Atlanta: no longer sought"
    assert record(case) == [("N", "lifted", ALL, "info", ""), ("T", "release_ordered", HELD, RO),
                            ("N", "release-order", ("release-desk", "supervisors", "ice"), "warning", "")]


def test_a_lift_after_the_release_order_is_recorded_and_told():
    case, pol = ordered()
    case.lift(DEADLINE - H, "ERO Atlanta", "no longer sought", now=DEADLINE - H)
    assert last_reason(case) == "lifted by ERO Atlanta; release already ordered: no longer sought"
    assert record(case) == [("T", "detainer_lifted", RO, RO), ("N", "lifted", ALL, "info", "")]


def test_a_second_lift_is_only_recorded():
    case, pol = held()
    case.lift(T0 + 2 * H, "ERO Atlanta", "no longer sought", now=T0 + 2 * H)
    case.drain_effects()
    case.lift(T0 + 3 * H, "ERO Raleigh", "again", now=T0 + 3 * H)
    assert case.lifted_at == T0 + 2 * H
    assert last_reason(case) == "detainer lift by ERO Raleigh recorded; the case was already release_ordered"
    assert record(case) == [("T", "lift_recorded", RO, RO)]


# --- what the record says of the case --------------------------------------------------------


def test_warnings_name_the_missing_copy_and_an_unverified_identity_while_open():
    pol = policy()
    case = open_case(RECEIVED, pol, identity_verified=False)
    assert case.warnings() == ["no copy of the detainer has been recorded as given to the person (rule 4)",
                               "identity not verified against the booking: no hold, supervisor review"]
    case.record_copy_served(RECEIVED, "Deputy Ruiz", "Spanish")
    case.lift(RECEIVED + H, "ERO", "n", now=RECEIVED + H)
    assert case.warnings() == []


def test_drained_effects_are_gone():
    case, pol = authorized()
    case.record_copy_served(T0, "Deputy Ruiz", "Spanish")
    assert len(case.drain_effects()) == 1 and case.drain_effects() == []


def test_each_notice_has_its_idempotency_key():
    assert Notice("reminder", ("ice",), mark="12h").key_for("2026-00001", "ice") == "2026-00001:reminder@12h:ice"
    assert Notice("release-order", ("ice",)).key_for("2026-00001", "release-desk") == "2026-00001:release-order:release-desk"
