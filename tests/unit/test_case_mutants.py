"""What a case does at the very instant each rule turns, and what an earlier T0
or a re-issued detainer leaves in every field of its record and in every notice:
the cases mutation testing found unasserted (bench/results/mutation.md).

The clock is the instants handed to each method: no test waits."""
from dataclasses import replace
from datetime import timedelta

from models.case import Case
from models.domain import Notice, Problem, Service, Status, Transition, Urgency
from models.rules import authority_problems
from tests.builders import detainer, open_case, policy, utc

H = timedelta(hours=1)
M = timedelta(minutes=1)
RECEIVED = utc(2026, 3, 1, 14)
T0 = utc(2026, 3, 10, 17)
DEADLINE = T0 + 48 * H
HB10 = [{"effective_from": "2024-12-01", "rule": "detainer_received"}]


def served(at, warrant="W-77"):
    return Service("W-1", warrant, "RCJ", at, "s1")


def authorized(pol, at=T0):
    case = open_case(RECEIVED, pol)
    case.authorize_release(at, "bond_posted", pol, now=at)
    case.drain_effects()
    return case


def held(pol, served_at=T0 + 20 * M):
    case = authorized(pol)
    case.record_service(served(served_at), [], pol, now=served_at)
    case.drain_effects()
    return case


def transitions(effects):
    return [e for e in effects if isinstance(e, Transition)]


def notices(effects):
    return [e for e in effects if isinstance(e, Notice)]


# --- opening and the release authorisation ---------------------------------------------------


def test_a_detainer_that_cannot_authorise_a_hold_is_opened_naming_its_origin_and_every_problem():
    pol = policy()
    papers = detainer(RECEIVED, requests_custody=False, identity_verified=False)
    problems = authority_problems(papers, pol)
    assert len(problems) == 2
    case = Case.open("2026-00001", "B1", "RCJ", papers, pol)
    [opened] = transitions(case.effects)
    assert opened.reason == "detainer I-247A received from ERO Atlanta; it cannot authorise a hold: " + "; ".join(problems)


def test_the_reason_no_hold_may_be_made_lists_each_problem_of_the_papers():
    pol = policy()
    case = open_case(RECEIVED, pol, requests_custody=False, warrant=False)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    assert case.status is Status.CLOSED
    assert case.no_hold_reason.split("; ") == authority_problems(case.detainer, pol)
    assert len(authority_problems(case.detainer, pol)) == 2


def test_the_same_release_authorisation_reported_again_only_records_it():
    pol = policy()
    case = held(pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0 + H)
    effects = case.drain_effects()
    assert [t.action for t in transitions(effects)] == ["release_authorization_recorded"]
    assert notices(effects) == [] and case.t0 == T0 and case.status is Status.HELD


def test_a_release_authorised_the_very_instant_the_limit_from_the_detainer_ends_holds_nobody():
    pol = policy(anchor=HB10)
    case = open_case(RECEIVED, pol)
    at = RECEIVED + 48 * H  # the deadline counted from the detainer is this instant
    case.authorize_release(at, "bond_posted", pol, now=at)
    assert case.status is Status.CLOSED and case.deadline_at == at
    assert "ran out before the release" in case.no_hold_reason
    # no window for an officer to serve in: release was due at once, plus the desk's allowance
    due, why = case.release_due(pol)
    assert due == at + 30 * M and why.startswith("no authority to hold")


def test_a_service_reported_before_a_t0_whose_grace_ends_at_that_very_service_starts_the_hold():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.record_service(served(T0 + H), [], pol, now=T0 + H)  # the report came in before the jail's
    case.authorize_release(T0, "bond_posted", pol, now=T0 + H)
    assert case.status is Status.HELD and case.hold_started_at == T0 + H


def test_a_service_at_the_very_close_of_the_grace_starts_the_hold():
    pol = policy()
    case = authorized(pol)
    case.record_service(served(T0 + H), [], pol, now=T0 + H)
    assert case.status is Status.HELD and case.hold_authorized is True
    assert case.no_hold_reason is None


def test_a_refused_service_records_each_problem():
    pol = policy()
    case = authorized(pol)
    problems = [Problem("location", "not here"), Problem("officer_badge", "not on the roster")]
    case.record_service(served(T0 + 20 * M), problems, pol, now=T0 + 20 * M)
    [refused] = transitions(case.drain_effects())
    assert refused.reason.endswith("refused: location: not here; officer_badge: not on the roster")


# --- a re-issued detainer ---------------------------------------------------------------------


def test_a_reissued_detainer_with_another_warrant_says_which_service_no_longer_counts_and_asks_for_a_new_one():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.record_service(served(RECEIVED + H), [], pol, now=RECEIVED + H)
    case.drain_effects()
    case.merge_detainer(replace(detainer(RECEIVED + 2 * H, event_number="EV2"), warrant_number="W-88"), pol)
    effects = case.drain_effects()
    [merged] = transitions(effects)
    assert (merged.action, merged.status_before, merged.status_after) == ("detainer_merged", Status.AWAITING_RELEASE,
                                                                           Status.AWAITING_RELEASE)
    assert merged.reason.startswith("re-issued detainer I-247A (event EV2) merged; it now governs the case; ")
    for fact in ("2026-03-01T15:00:00Z", "badge W-1", "warrant W-77", "W-88", "no longer counts", "must be served"):
        assert fact in merged.reason, fact
    assert notices(effects) == [Notice("serve-warrant", ("wso",), Urgency.WARNING, mark="W-88"),
                                Notice("detainer-reissued", ("supervisors",), mark="EV2")]
    assert (case.served_at, case.served_by, case.service_event_id) == (None, None, None)



def test_a_reissued_detainer_without_a_warrant_voids_the_service_and_asks_nobody_to_serve_a_warrant_that_does_not_exist():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.record_service(served(RECEIVED + H), [], pol, now=RECEIVED + H)
    case.drain_effects()
    case.merge_detainer(replace(detainer(RECEIVED + 2 * H, event_number="EV2"), warrant_number=None), pol)
    effects = case.drain_effects()
    [merged] = transitions(effects)
    assert merged.reason.endswith("was of warrant W-77, and the re-issued detainer carries no warrant: the service no longer counts")
    assert "None" not in merged.reason and "must be served" not in merged.reason
    assert notices(effects) == [Notice("detainer-reissued", ("supervisors",), mark="EV2")]
    assert (case.served_at, case.served_by, case.service_event_id) == (None, None, None)
    case.authorize_release(RECEIVED + 3 * H, "bond_posted", pol, now=RECEIVED + 3 * H)
    assert case.status is Status.CLOSED and "warrant" in case.no_hold_reason

# --- an earlier T0 ----------------------------------------------------------------------------


def test_an_earlier_t0_during_the_hold_that_puts_the_service_outside_the_grace_orders_release_at_once():
    pol = policy()
    case = held(pol)  # served at T0+20m
    now = T0 + H
    case.authorize_release(T0 - 2 * H, "bond_posted", pol, now=now)
    assert case.hold_authorized is False and case.anchor_rule == "release_authorized"
    assert "after the grace" in case.no_hold_reason and "corrected T0" in case.no_hold_reason
    assert case.status is Status.RELEASE_ORDERED and case.release_ordered_at == now
    assert "T0 moved to 2026-03-10T15:00:00Z" in case.release_order_reason
    assert case.release_order_reason.endswith("; " + case.no_hold_reason)
    effects = case.drain_effects()
    assert effects[0] == Notice("t0-corrected", ("supervisors", "ice"), Urgency.WARNING, mark="2026-03-10T15:00:00Z")
    assert [(t.action, t.status_before, t.status_after) for t in transitions(effects)] == [
        ("release_ordered", Status.HELD, Status.RELEASE_ORDERED)]


def test_a_service_at_the_very_close_of_the_corrected_grace_keeps_the_hold():
    pol = policy()
    case = held(pol)  # served at T0+20m
    case.authorize_release(T0 - 40 * M, "bond_posted", pol, now=T0 + H)  # the grace now ends at T0+20m
    assert case.hold_authorized is True and case.status is Status.HELD
    assert [t.action for t in transitions(case.drain_effects())] == ["t0_corrected"]


def test_an_earlier_t0_after_the_release_order_withdraws_the_hold_telling_supervisors_of_a_person_still_in_custody():
    pol = policy()
    case = held(pol)
    case.advance(DEADLINE - 2 * H, pol)  # the release order; the person has not left
    case.drain_effects()
    case.authorize_release(T0 - 2 * H, "bond_posted", pol, now=DEADLINE - 2 * H + M)
    effects = case.drain_effects()
    [withdrawn] = transitions(effects)
    assert withdrawn.action == "hold_withdrawn" and withdrawn.status_after is Status.RELEASE_ORDERED
    assert withdrawn.reason.endswith("the hold had no authority")  # nobody has left: no lateness to tell
    assert notices(effects) == [
        Notice("hold-withdrawn", ("supervisors",), Urgency.WARNING, mark="2026-03-10T15:00:00Z"),
        Notice("t0-corrected", ("supervisors", "ice"), Urgency.WARNING, mark="2026-03-10T15:00:00Z")]


def test_an_earlier_t0_after_the_person_left_tells_no_one_of_a_new_deadline():
    pol = policy()
    case = held(pol)
    case.advance(DEADLINE - 2 * H, pol)
    case.confirm_release(DEADLINE - H, "Sgt Ames", pol, now=DEADLINE - H)
    case.drain_effects()
    case.authorize_release(T0 - 2 * H, "bond_posted", pol, now=DEADLINE)  # the service falls outside the grace
    assert "t0-corrected" not in [n.kind for n in notices(case.drain_effects())]
    released_in_time = held(pol)
    released_in_time.confirm_release(T0 + 2 * H, "Sgt Ames", pol, now=T0 + 2 * H)
    released_in_time.drain_effects()
    released_in_time.authorize_release(T0 - 30 * M, "bond_posted", pol, now=T0 + 3 * H)  # the service still counts
    effects = released_in_time.drain_effects()
    assert [t.action for t in transitions(effects)] == ["t0_corrected"] and notices(effects) == []


def test_an_earlier_t0_inside_the_window_records_the_correction_and_asks_for_service_by_the_new_close():
    pol = policy()
    case = authorized(pol)
    case.authorize_release(T0 - 20 * M, "bond_posted", pol, now=T0 + 10 * M)
    effects = case.drain_effects()
    [corrected] = transitions(effects)
    assert (corrected.action, corrected.status_before, corrected.status_after) == (
        "t0_corrected", Status.RELEASE_AUTHORIZED, Status.RELEASE_AUTHORIZED)
    assert notices(effects) == [
        Notice("t0-corrected", ("supervisors", "ice"), Urgency.WARNING, mark="2026-03-10T16:40:00Z"),
        Notice("serve-warrant", ("wso",), Urgency.WARNING, mark="2026-03-10T17:40:00Z")]


def test_an_earlier_t0_whose_window_closes_the_very_instant_it_is_reported_still_asks_for_service():
    pol = policy()
    case = authorized(pol)
    case.authorize_release(T0 - 50 * M, "bond_posted", pol, now=T0 + 10 * M)  # the window closes now
    assert Notice("serve-warrant", ("wso",), Urgency.WARNING, mark="2026-03-10T17:10:00Z") in case.drain_effects()


def test_an_earlier_t0_under_hb10_stays_anchored_on_the_detainer():
    pol = policy(anchor=HB10)
    case = authorized(pol, at=RECEIVED + 10 * H)
    case.authorize_release(RECEIVED + 5 * H, "bond_posted", pol, now=RECEIVED + 10 * H + M)
    assert (case.t0, case.anchor_rule) == (RECEIVED, "detainer_received")
    assert case.release_authorized_at == RECEIVED + 5 * H and case.deadline_at == RECEIVED + 48 * H


# --- the person leaving -----------------------------------------------------------------------


def test_a_release_at_the_very_deadline_is_in_time():
    pol = policy()
    case = held(pol)
    case.advance(DEADLINE - 2 * H, pol)
    case.drain_effects()
    case.confirm_release(DEADLINE, "Sgt Ames", pol, now=DEADLINE)
    effects = case.drain_effects()
    assert [t.reason for t in transitions(effects)] == ["released by Sgt Ames"]
    assert notices(effects) == [Notice("released", ("ice", "supervisors"), Urgency.INFO)]


def test_a_person_who_leaves_late_after_a_case_closed_without_a_hold_is_recorded_as_late():
    pol = policy()
    case = open_case(RECEIVED, pol, identity_verified=False)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.drain_effects()
    case.confirm_release(T0 + 2 * H, "Sgt Ames", pol, now=T0 + 2 * H)
    [left] = transitions(case.drain_effects())
    assert "1h30m AFTER release was due" in left.reason


def test_a_release_reported_again_after_the_person_left_in_time_is_not_late():
    pol = policy()
    case = held(pol)
    case.confirm_release(DEADLINE - H, "Sgt Ames", pol, now=DEADLINE - H)
    case.drain_effects()
    case.confirm_release(DEADLINE + 3 * H, "Sgt Lee", pol, now=DEADLINE + 3 * H)
    [again] = transitions(case.drain_effects())
    assert again.action == "release_recorded" and "AFTER" not in again.reason


# --- the passage of time ----------------------------------------------------------------------


def test_a_case_first_looked_at_the_very_instant_of_its_deadline_sends_no_reminder():
    pol = policy()
    case = held(pol)
    case.advance(DEADLINE, pol)
    assert "reminder" not in [n.kind for n in notices(case.drain_effects())]
    assert case.last_reminder_mark == timedelta(0)


def test_a_reminder_more_than_an_hour_before_the_deadline_is_information():
    pol = policy(reminder_marks=["90m"])
    case = held(pol)
    case.advance(DEADLINE - 90 * M, pol)
    [reminder] = [n for n in notices(case.drain_effects()) if n.kind == "reminder"]
    assert (reminder.urgency, reminder.mark) == (Urgency.INFO, "1h30m")


def test_after_the_early_reminders_the_next_thing_due_is_the_release_order():
    pol = policy()
    case = held(pol)
    case.advance(DEADLINE - 12 * H, pol)
    case.advance(DEADLINE - 4 * H, pol)
    assert case.last_reminder_mark == 4 * H
    assert case.next_due_at(pol) == DEADLINE - 2 * H  # before the 1h reminder


def test_once_supervisors_are_paged_the_next_thing_due_is_the_deadline():
    pol = policy()
    case = held(pol)
    case.advance(DEADLINE - 2 * H, pol)
    case.advance(DEADLINE - 30 * M, pol)
    assert case.supervisors_paged_at == DEADLINE - 30 * M and case.last_reminder_mark == H
    assert case.next_due_at(pol) == DEADLINE


# --- when release was due, and how long past it -----------------------------------------------


def test_without_authority_release_is_due_the_desks_allowance_after_the_authorisation():
    pol = policy()
    case = open_case(RECEIVED, pol, identity_verified=False)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    due, why = case.release_due(pol)
    assert due == T0 + 30 * M and why.startswith("no authority to hold")


def test_without_a_service_release_is_due_the_desks_allowance_after_the_window_closes():
    pol = policy()
    case = authorized(pol)
    case.advance(T0 + 2 * H, pol)
    due, why = case.release_due(pol)
    assert due == T0 + H + 30 * M and "service window" in why


def test_a_lift_just_after_the_window_closed_does_not_put_off_the_release():
    pol = policy()
    case = authorized(pol)
    case.advance(T0 + H + M, pol)  # no service: release ordered
    case.lift(T0 + H + 10 * M, "ERO Atlanta", "no longer sought", now=T0 + H + 10 * M)
    due, why = case.release_due(pol)
    assert due == T0 + H + 30 * M and "service window" in why


def test_a_lift_whose_allowance_ends_with_the_windows_leaves_the_window_as_the_reason():
    pol = policy()
    case = authorized(pol)
    case.lift(T0 + H, "ERO Atlanta", "no longer sought", now=T0 + H)  # at the very close of the window
    assert case.release_due(pol) == (T0 + H + 30 * M, "no hold: the service window's close plus the desk's 30m")


def test_minutes_past_due_is_none_before_any_release_is_due():
    pol = policy()
    case = open_case(RECEIVED, pol)
    assert case.release_due(pol) is None and case.minutes_past_due(pol, T0) is None


def test_a_case_closed_without_a_hold_counts_minutes_past_due_only_once_a_release_is_reported():
    pol = policy()
    case = open_case(RECEIVED, pol, identity_verified=False)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    assert case.minutes_past_due(pol, T0 + 10 * H) is None
    case.confirm_release(T0 + 2 * H, "Sgt Ames", pol, now=T0 + 2 * H)
    assert case.minutes_past_due(pol, T0 + 10 * H) == 90


def test_a_person_still_in_custody_at_the_very_deadline_is_not_yet_past_it():
    pol = policy()
    case = held(pol)
    case.advance(DEADLINE - 2 * H, pol)
    assert case.minutes_past_due(pol, DEADLINE) is None
    assert case.minutes_past_due(pol, DEADLINE + M) == 1


def test_a_hold_withdrawn_by_an_earlier_t0_says_why_in_the_case_record():
    pol = policy()
    case = held(pol)  # served at T0+20m
    case.authorize_release(T0 - 2 * H, "bond_posted", pol, now=T0 + H)
    assert case.no_hold_reason == "the warrant was served after the grace counted from the corrected T0"
