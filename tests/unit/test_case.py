"""The case's transitions, as pure Python: facts in, status and notices out."""
from datetime import timedelta

from models.domain import Notice, Service, Status, Transition, Urgency
from models.rules import NEVER_READ
from tests.builders import open_case, policy, utc

H = timedelta(hours=1)
US = timedelta(microseconds=1)
M = timedelta(minutes=1)
RECEIVED = utc(2026, 3, 1, 14)
T0 = utc(2026, 3, 10, 17)


def notices(case):
    return [e for e in case.drain_effects() if isinstance(e, Notice)]


def kinds(effects):
    return [e.kind for e in effects]


def served(at, badge="W-1"):
    return Service(badge, "W-77", "RCJ", at, "s1")


def held_case(pol=None):
    pol = pol or policy()
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.record_service(served(T0 + 20 * M), [], pol, now=T0 + 20 * M)
    case.drain_effects()
    return case, pol


def test_opening_a_case_notifies_records_and_supervisors():
    pol = policy()
    from models.case import Case
    from tests.builders import detainer
    case = Case.open("2026-00001", "B1", "RCJ", detainer(RECEIVED, identity_verified=False), pol)
    effects = case.drain_effects()
    assert case.status is Status.AWAITING_RELEASE
    assert ("detainer-received", ("records", "supervisors")) in [(n.kind, n.groups) for n in effects if isinstance(n, Notice)]
    assert "identity-review" in kinds(e for e in effects if isinstance(e, Notice))


def test_wso_release_authorisation_asks_for_service_and_notifies_ice_at_once():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0 + 2 * M)
    assert case.status is Status.RELEASE_AUTHORIZED
    assert case.t0 == T0 and case.deadline_at == T0 + 48 * H and case.release_order_at == T0 + 46 * H
    sent = notices(case)
    assert {"release-notice", "serve-warrant"} <= set(kinds(sent))
    assert next(n for n in sent if n.kind == "serve-warrant").groups == ("wso",)
    assert case.next_due_at(pol) == T0 + H + US  # just after the service grace: a service at its close counts


def test_service_within_the_grace_starts_the_hold_with_the_deadline_from_t0():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.record_service(served(T0 + 59 * M), [], pol, now=T0 + 59 * M)
    assert case.status is Status.HELD and case.hold_authorized
    assert case.deadline_at == T0 + 48 * H  # a service never moves T0
    assert "hold-started" in kinds(notices(case))
    assert case.next_due_at(pol) == case.deadline_at - 12 * H  # first reminder


def test_the_held_case_walks_through_reminders_release_order_page_and_overdue_alarm():
    case, pol = held_case()
    deadline = case.deadline_at
    case.advance(deadline - 12 * H, pol)
    assert [(n.kind, n.mark) for n in notices(case)] == [("reminder", "12h")]
    case.advance(deadline - 4 * H, pol)
    assert [(n.kind, n.mark) for n in notices(case)] == [("reminder", "4h")]
    case.advance(deadline - 2 * H, pol)
    assert case.status is Status.RELEASE_ORDERED and case.release_ordered_at == deadline - 2 * H
    order = notices(case)
    assert kinds(order) == ["release-order"] and set(order[0].groups) == {"release-desk", "supervisors", "ice"}
    assert case.next_due_at(pol) == deadline - H
    case.advance(deadline - H, pol)
    assert [(n.kind, n.mark) for n in notices(case)] == [("reminder", "1h")]
    case.advance(deadline - 30 * M, pol)
    page = notices(case)
    assert kinds(page) == ["release-unconfirmed"] and page[0].urgency is Urgency.URGENT
    assert set(page[0].groups) == {"supervisors", "sheriff"}
    case.advance(deadline, pol)
    assert kinds(notices(case)) == ["deadline-passed"]
    assert case.next_due_at(pol) is None
    case.advance(deadline + H, pol)
    assert notices(case) == []  # nothing is sent twice


def test_advance_is_idempotent_at_the_same_instant():
    case, pol = held_case()
    case.advance(case.release_order_at, pol)
    first = case.drain_effects()
    case.advance(case.release_order_at, pol)
    assert first and case.drain_effects() == []


def test_release_confirmed_closes_the_case_and_stops_everything():
    case, pol = held_case()
    case.confirm_release(case.deadline_at - 3 * H, "Desk", pol, now=case.deadline_at - 3 * H)
    assert case.status is Status.RELEASED and case.next_due_at(pol) is None


def test_a_zero_lead_orders_release_at_the_deadline_itself():
    case, pol = held_case(policy(release_order_lead="0s", page_supervisors_before="0s"))
    case.advance(case.deadline_at - timedelta(seconds=1), pol)
    assert case.status is Status.HELD
    case.advance(case.deadline_at, pol)
    assert case.status is Status.RELEASE_ORDERED


def test_detainer_mode_holds_at_t0_without_service():
    pol = policy(mode="detainer")
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "sentence_complete", pol, now=T0)
    assert case.status is Status.HELD and case.hold_started_at == T0


def test_notify_only_never_holds_and_tells_ice_and_the_desk():
    for pol, args in ((policy(mode="notify_only"), {}), (policy(), {"form": "I-247G"}), (policy(), {"form": "I-247N"})):
        case = open_case(RECEIVED, pol, **args)
        case.authorize_release(T0, "bond_posted", pol, now=T0)
        assert case.status is Status.CLOSED and not case.hold_authorized
        assert {"release-notice", "no-hold"} <= set(kinds(notices(case)))


def test_wrong_person_or_no_box1_or_no_warrant_means_no_hold():
    for args in ({"identity_verified": False}, {"requests_custody": False}, {"warrant": False}):
        pol = policy()
        case = open_case(RECEIVED, pol, **args)
        case.authorize_release(T0, "bond_posted", pol, now=T0)
        assert case.status is Status.CLOSED, args
        assert case.no_hold_reason


def test_no_service_within_the_grace_orders_release_without_a_hold():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.drain_effects()
    case.advance(T0 + 59 * M, pol)
    assert case.status is Status.RELEASE_AUTHORIZED
    case.advance(T0 + H, pol)  # the window's last instant: a service now would still count
    assert case.status is Status.RELEASE_AUTHORIZED
    case.advance(T0 + H + US, pol)
    assert case.status is Status.RELEASE_ORDERED and not case.hold_authorized
    assert {"no-service", "release-order"} <= set(kinds(notices(case)))
    # The desk has 30 minutes from the order, not until the far-off deadline, to confirm.
    assert case.unconfirmed_page_at(pol) == T0 + H + US + 30 * M
    # A service reported afterwards is recorded once and authorises nothing.
    case.record_service(served(T0 + 50 * M), [], pol, now=T0 + 2 * H)
    assert case.status is Status.RELEASE_ORDERED and case.served_by == "W-1"
    assert "late-service" in kinds(notices(case))


def test_the_window_ends_only_once_every_report_made_before_it_closed_has_been_read():
    """A form stored in the Prefect UI before the window closed but not yet read
    into the database keeps the window open: the case is decided once the
    reports are read past the close, or report_wait after it if they cannot be."""
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.drain_effects()
    closes = T0 + H
    case.advance(closes, pol, reports_read_through=closes - timedelta(milliseconds=1))
    assert case.status is Status.RELEASE_AUTHORIZED and not case.effects
    # The report, stored before the close, is read a moment later: it counts.
    case.record_service(served(closes - timedelta(seconds=2)), [], pol, now=closes + timedelta(seconds=1))
    assert case.status is Status.HELD and case.hold_started_at == closes - timedelta(seconds=2)

    read = open_case(RECEIVED, pol)
    read.authorize_release(T0, "bond_posted", pol, now=T0)
    read.advance(closes + timedelta(milliseconds=80), pol, reports_read_through=closes)
    assert read.status is Status.RELEASE_ORDERED and read.release_ordered_at == closes + timedelta(milliseconds=80)
    assert "could not be read" not in read.release_order_reason

    unread = open_case(RECEIVED, pol)
    unread.authorize_release(T0, "bond_posted", pol, now=T0)
    unread.advance(closes + pol.report_wait - timedelta(milliseconds=1), pol, reports_read_through=T0)
    assert unread.status is Status.RELEASE_AUTHORIZED
    unread.advance(closes + pol.report_wait, pol, reports_read_through=T0)
    assert unread.status is Status.RELEASE_ORDERED and not unread.hold_authorized
    assert unread.release_order_reason == (
        "no certified WSO served the warrant within 1h of T0: no hold (rule 6) (officers' reports in the Prefect UI "
        "could not be read after 2026-03-10T17:00:00Z; decided without them 30s after the window closed)")

    never = open_case(RECEIVED, pol)
    never.authorize_release(T0, "bond_posted", pol, now=T0)
    never.advance(closes + pol.report_wait, pol, reports_read_through=NEVER_READ)
    assert never.release_order_reason.endswith(
        "(officers' reports in the Prefect UI have not been read (no reader has run); "
        "decided without them 30s after the window closed)")


def test_a_case_no_officer_can_report_outside_the_database_for_is_decided_at_the_close():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.advance(T0 + H + US, pol, reports_read_through=None)
    assert case.status is Status.RELEASE_ORDERED and case.release_ordered_at == T0 + H + US


def test_a_service_after_the_grace_never_starts_a_hold():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.record_service(served(T0 + 61 * M), [], pol, now=T0 + 61 * M)
    assert case.status is Status.RELEASE_AUTHORIZED and not case.hold_authorized
    case.advance(T0 + 61 * M, pol)
    assert case.status is Status.RELEASE_ORDERED


def test_service_recorded_before_the_release_authorisation_starts_the_hold_at_t0():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.record_service(served(T0 + 10 * M), [], pol, now=T0 + 11 * M)  # arrived first
    assert case.status is Status.AWAITING_RELEASE
    case.authorize_release(T0, "bond_posted", pol, now=T0 + 12 * M)
    assert case.status is Status.HELD and case.deadline_at == T0 + 48 * H


def test_a_second_service_is_not_counted_again():
    case, pol = held_case()
    case.record_service(served(T0 + 30 * M, badge="W-2"), [], pol, now=T0 + 30 * M)
    effects = case.drain_effects()
    assert case.served_by == "W-1"
    assert [e.action for e in effects if isinstance(e, Transition)] == ["service_already_recorded"]


def test_lift_before_t0_closes_and_during_the_hold_orders_release():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.lift(RECEIVED + H, "ERO", "withdrawn", now=RECEIVED + H)
    assert case.status is Status.CLOSED
    case, pol = held_case()
    case.lift(T0 + 5 * H, "ERO", "withdrawn", now=T0 + 5 * H)
    assert case.status is Status.RELEASE_ORDERED
    assert {"lifted", "release-order"} <= set(kinds(notices(case)))
    case.advance(case.deadline_at - H, pol)
    assert "reminder" not in kinds(notices(case))  # nobody to remind once lifted


def test_lift_during_the_grace_orders_release():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    case.lift(T0 + 10 * M, "ERO", "withdrawn", now=T0 + 10 * M)
    assert case.status is Status.RELEASE_ORDERED


def test_ice_pickup_and_transfer_out():
    case, pol = held_case()
    case.transfer(T0 + 20 * H, "ICE", "Officer P", pol, now=T0 + 20 * H)
    assert case.status is Status.TRANSFERRED and kinds(notices(case)) == ["picked-up"]
    case, pol = held_case()
    case.transfer(T0 + 2 * H, "Guilford County", "Deputy Q", pol, now=T0 + 2 * H)
    sent = notices(case)
    assert case.status is Status.TRANSFERRED and sent[0].kind == "transferred-out" and "ice" in sent[0].groups


def test_ice_arriving_after_the_release_is_recorded_as_an_attempt():
    case, pol = held_case()
    case.confirm_release(case.deadline_at - H, "Desk", pol, now=case.deadline_at - H)
    case.drain_effects()
    case.transfer(case.deadline_at + H, "ICE", "Officer P", pol, now=case.deadline_at + H)
    effects = case.drain_effects()
    assert case.status is Status.RELEASED
    assert [e.action for e in effects if isinstance(e, Transition)] == ["transfer_after_close"]


def test_late_processing_orders_release_at_once_when_the_release_time_has_passed():
    pol = policy(mode="detainer")
    case = open_case(RECEIVED, pol)
    case.authorize_release(T0, "bond_posted", pol, now=T0 + 47 * H)
    assert case.status is Status.HELD
    case.advance(T0 + 47 * H, pol)
    assert case.status is Status.RELEASE_ORDERED


def test_hb10_anchor_from_detainer_receipt_can_leave_no_time_to_hold():
    pol = policy(mode="detainer", anchor=[{"effective_from": "2024-12-01", "rule": "detainer_received"}])
    case = open_case(RECEIVED, pol)  # received nine days before the release
    case.authorize_release(T0, "bond_posted", pol, now=T0)
    assert case.t0 == RECEIVED and case.deadline_at == RECEIVED + 48 * H
    assert case.status is Status.CLOSED and "ran out" in case.no_hold_reason


def test_detainer_copy_warning_until_recorded():
    pol = policy()
    case = open_case(RECEIVED, pol)
    assert any("copy" in w for w in case.warnings())
    case.record_copy_served(RECEIVED + H, "Clerk", "Spanish")
    assert not any("copy" in w for w in case.warnings())


def test_release_scheduled_gives_ice_advance_notice_and_flags_short_notice():
    pol = policy()
    case = open_case(RECEIVED, pol)
    case.schedule_release(RECEIVED + 72 * H, pol, now=RECEIVED)
    [early] = notices(case)
    assert early.kind == "advance-notice" and early.urgency is Urgency.INFO and early.groups == ("ice",)
    case.schedule_release(RECEIVED + 10 * H, pol, now=RECEIVED)
    [short] = notices(case)
    assert short.urgency is Urgency.WARNING and short.mark != early.mark


def test_an_earlier_release_time_reported_later_moves_the_deadline_earlier_never_later():
    case, pol = held_case()
    case.authorize_release(T0 + 2 * H, "bond_posted", pol, now=T0 + 3 * H)  # a later time: ignored
    assert case.t0 == T0
    case.authorize_release(T0 - 30 * M, "bond_posted", pol, now=T0 + 3 * H)
    assert case.t0 == T0 - 30 * M and case.deadline_at == T0 - 30 * M + 48 * H
    assert case.status is Status.HELD  # served at T0 + 20 min: still inside the grace from the new T0
    case.authorize_release(T0 - 2 * H, "bond_posted", pol, now=T0 + 3 * H)
    assert case.status is Status.RELEASE_ORDERED and not case.hold_authorized
