"""The case aggregate: one person's detainer, from arrival to an outcome.

Each method applies one fact or one passage of time and appends what it did to
`effects` (audit transitions and notices). Facts carry their own instants (when
they happened in the jail); `now` is only when the system acts on them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.clock import as_utc, iso_z
from models.domain import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    Detainer,
    Notice,
    Problem,
    Service,
    Status,
    Transition,
    Urgency,
)
from models.durations import format_duration
from models.policy import Mode, Policy
from models.rules import (
    NEVER_READ,
    authority_problems,
    clock_anchor,
    hold_deadline,
    next_reminder_mark,
    release_order_time,
    service_due_by,
    service_window_end,
    upcoming_reminder_at,
)

ALL_INVOLVED = ("ice", "release-desk", "supervisors", "wso")


@dataclass
class Case:
    case_id: str
    booking_number: str
    facility: str
    status: Status
    opened_at: datetime  # when the first detainer was received
    detainer: Detainer
    version: int = 0
    status_reason: str | None = None
    release_authorized_at: datetime | None = None
    release_reason: str | None = None
    t0: datetime | None = None
    anchor_rule: str | None = None
    deadline_at: datetime | None = None
    release_order_at: datetime | None = None
    hold_authorized: bool = False
    hold_started_at: datetime | None = None
    no_hold_reason: str | None = None
    served_at: datetime | None = None
    served_by: str | None = None
    service_event_id: str | None = None
    copy_served_at: datetime | None = None
    copy_served_by: str | None = None
    copy_language: str | None = None
    expected_release_at: datetime | None = None
    lifted_at: datetime | None = None
    release_ordered_at: datetime | None = None
    release_order_reason: str | None = None
    supervisors_paged_at: datetime | None = None
    overdue_alerted_at: datetime | None = None
    last_reminder_mark: timedelta | None = None
    released_at: datetime | None = None
    transferred_at: datetime | None = None
    transferred_to: str | None = None
    closed_at: datetime | None = None
    effects: list[Transition | Notice] = field(default_factory=list, repr=False, compare=False)

    # --- opening ---------------------------------------------------------------

    @classmethod
    def open(cls, case_id: str, booking_number: str, facility: str, detainer: Detainer, policy: Policy) -> "Case":
        case = cls(case_id, booking_number, facility, Status.AWAITING_RELEASE, as_utc(detainer.received_at), detainer)
        problems = authority_problems(detainer, policy)
        reason = f"detainer {detainer.form} received from {detainer.issuing_office}"
        if problems:
            reason += "; it cannot authorise a hold: " + "; ".join(problems)
        case.effects.append(Transition("case_opened", None, Status.AWAITING_RELEASE, reason))
        case.effects.append(Notice("detainer-received", ("records", "supervisors")))
        if not detainer.identity_verified:
            case.effects.append(Notice("identity-review", ("supervisors",), Urgency.WARNING))
        return case

    def close_already_released(self, released_at: datetime, now: datetime) -> None:
        """A detainer for someone who has already left opens a closed case: never a hold."""
        self.released_at = as_utc(released_at)
        self.no_hold_reason = "the person had already been released when the detainer arrived"
        self.closed_at = now
        self._move(Status.CLOSED, "no_hold", self.no_hold_reason, Notice("already-released", ("ice", "records")))

    def merge_detainer(self, detainer: Detainer, policy: Policy) -> None:
        """Rule 11: one active case per person; a re-issued detainer merges."""
        if self.status is Status.AWAITING_RELEASE:
            old_warrant, self.detainer = self.detainer.warrant_number, detainer
            reason = f"re-issued detainer {detainer.form} (event {detainer.ice_event_number}) merged; it now governs the case"
            if self.served_at is not None and detainer.warrant_number != old_warrant:
                # Rule 5: the service was of warrant `old_warrant`; the hold may only rest on the one that now governs.
                service = f"; the service at {iso_z(self.served_at)} by badge {self.served_by} was of warrant {old_warrant}"
                if detainer.warrant_number is None:
                    # Nothing to serve: the new papers carry no warrant, so asking an officer to serve one would be a false errand.
                    reason += f"{service}, and the re-issued detainer carries no warrant: the service no longer counts"
                    serve = ()
                else:
                    reason += f"{service}, not {detainer.warrant_number}: it no longer counts and the new warrant must be served"
                    serve = (Notice("serve-warrant", ("wso",), Urgency.WARNING, mark=detainer.warrant_number),) if policy.mode is Mode.WSO else ()
                self.served_at = self.served_by = self.service_event_id = None
                self._note("detainer_merged", reason, *serve, Notice("detainer-reissued", ("supervisors",), mark=detainer.ice_event_number))
                return
            self._note("detainer_merged", reason)
        else:
            self._note("detainer_merged", f"re-issued detainer {detainer.form} (event {detainer.ice_event_number}) merged; the running clock is unchanged",
                       Notice("detainer-reissued", ("supervisors",), mark=detainer.ice_event_number))

    # --- facts from the jail and ICE --------------------------------------------

    def authorize_release(self, at: datetime, reason: str, policy: Policy, now: datetime) -> None:
        at = as_utc(at)
        if self.status is not Status.AWAITING_RELEASE:
            if self.release_authorized_at is not None and at < self.release_authorized_at:
                self._correct_t0_earlier(at, policy, now)
            else:
                self._note("release_authorization_recorded", f"release authorisation at {iso_z(at)} recorded; the case was already {self.status}")
            return
        self.release_authorized_at = at
        self.release_reason = reason
        self.t0, kind = clock_anchor(policy, at, self.opened_at)
        self.anchor_rule = str(kind)
        self.deadline_at = hold_deadline(self.t0, policy)
        self.release_order_at = release_order_time(self.deadline_at, policy)
        self.effects.append(Notice("release-notice", ("ice",)))  # rule 9: notice to ICE at T0, at once

        problems = authority_problems(self.detainer, policy)
        if self.deadline_at <= at:
            problems.append(f"the {format_duration(policy.hold_limit)} limit counted from {kind} ran out before the release")
        if problems:
            self.no_hold_reason = "; ".join(problems)
            self.closed_at = now
            self._move(Status.CLOSED, "no_hold", f"no authority to hold: {self.no_hold_reason}",
                       Notice("no-hold", ("release-desk", "supervisors"), Urgency.WARNING))
            return
        if policy.mode is Mode.DETAINER:
            self._start_hold(at, f"T0 {iso_z(self.t0)}; detainer mode holds on the I-247A with its warrant")
            return
        if self.served_at is not None and self.served_at <= service_due_by(at, policy):
            self._start_hold(max(at, self.served_at), f"T0 {iso_z(self.t0)}; warrant already served at {iso_z(self.served_at)} by badge {self.served_by}")
            return
        self._move(Status.RELEASE_AUTHORIZED, "release_authorized",
                   f"T0 {iso_z(self.t0)} ({reason}); a certified WSO must serve the warrant by {iso_z(service_due_by(at, policy))}",
                   Notice("serve-warrant", ("wso",), Urgency.WARNING))

    def _correct_t0_earlier(self, at: datetime, policy: Policy, now: datetime) -> None:
        """The jail reports an earlier release authorisation than the one we
        anchored on: the person would have gone free sooner, so the clock moves
        earlier (never later), and a service that is now outside the grace no
        longer authorises the hold."""
        self.release_authorized_at = at
        self.t0, kind = clock_anchor(policy, at, self.opened_at)
        self.anchor_rule = str(kind)
        self.deadline_at = hold_deadline(self.t0, policy)
        self.release_order_at = release_order_time(self.deadline_at, policy)
        reason = f"earlier release authorisation at {iso_z(at)}: T0 moved to {iso_z(self.t0)}, deadline now {iso_z(self.deadline_at)}"
        corrected = Notice("t0-corrected", ("supervisors", "ice"), Urgency.WARNING, mark=iso_z(self.t0) or "")
        late_service = (policy.mode is Mode.WSO and self.served_at is not None
                        and self.served_at > service_due_by(at, policy))
        if self.hold_authorized and late_service:
            # The hold never had authority: withdrawn whether it is running,
            # ordered ended, or already over (the record and report count from it).
            self.hold_authorized = False
            self.no_hold_reason = "the warrant was served after the grace counted from the corrected T0"
            if self.status is Status.HELD:
                self.effects.append(corrected)
                self._order_release(f"{reason}; {self.no_hold_reason}", now)
                return
            left = self.left_custody_at
            late = self._late(left, policy) if left is not None else ""
            withdrawn = Notice("hold-withdrawn", ("supervisors", "sheriff") if late else ("supervisors",),
                               Urgency.URGENT if late else Urgency.WARNING, mark=iso_z(self.t0) or "")
            self._note("hold_withdrawn", f"{reason}; {self.no_hold_reason}: the hold had no authority{late}",
                       withdrawn, *((corrected,) if self.is_open else ()))
            return
        if self.status is Status.RELEASE_AUTHORIZED:
            due = service_due_by(at, policy)
            # An order to serve by a time already past would only mislead: the window's close is then decided at once.
            serve = (Notice("serve-warrant", ("wso",), Urgency.WARNING, mark=iso_z(due) or ""),) if now <= due and self.served_at is None else ()
            self._move(Status.RELEASE_AUTHORIZED, "t0_corrected", f"{reason}; a certified WSO must serve the warrant by {iso_z(due)}",
                       corrected, *serve)
            return
        self._note("t0_corrected", reason, *((corrected,) if self.is_open else ()))

    def record_service(self, service: Service, problems: list[Problem], policy: Policy, now: datetime) -> None:
        if problems:
            why = "; ".join(str(p) for p in problems)
            self._note("service_refused", f"report by badge {service.officer_badge} of a service at {iso_z(service.served_at)} "
                       "refused: " + why,
                       Notice("service-refused", ("supervisors",), Urgency.WARNING, mark=service.event_id or iso_z(service.served_at),
                              detail=why))
            return
        if self.served_at is not None:
            self._note("service_already_recorded", f"the warrant was already served at {iso_z(self.served_at)} by badge {self.served_by}; not counted again")
            return
        if self.status in TERMINAL_STATUSES:
            self._note("service_after_close", f"service by badge {service.officer_badge} at {iso_z(service.served_at)} recorded; the case was already {self.status}")
            return
        self.served_at = as_utc(service.served_at)
        self.served_by = service.officer_badge
        self.service_event_id = service.event_id
        if self.status is Status.RELEASE_ORDERED:
            self._note("service_after_release_order", f"warrant served by badge {service.officer_badge} after the release was ordered: no hold",
                       Notice("late-service", ("supervisors",), Urgency.WARNING))
        elif policy.mode is not Mode.WSO:
            self._note("warrant_served", f"warrant served by badge {service.officer_badge} (not required in {policy.mode} mode)")
        elif self.status is Status.AWAITING_RELEASE:
            self._note("warrant_served", f"warrant served by badge {service.officer_badge} before the release authorisation; the hold starts at T0 if authorised")
        elif self.status is Status.RELEASE_AUTHORIZED:
            assert self.release_authorized_at is not None
            if self.served_at <= service_due_by(self.release_authorized_at, policy):
                self._start_hold(max(self.served_at, self.release_authorized_at), f"warrant served by certified WSO badge {service.officer_badge} at {iso_z(self.served_at)}")
            else:
                self._note("late_service", f"served at {iso_z(self.served_at)}, after the {format_duration(policy.service_grace)} grace: a late service never moves T0 and authorises no hold",
                           Notice("late-service", ("supervisors",), Urgency.WARNING))

    def record_copy_served(self, at: datetime, served_by: str, language: str) -> None:
        """Rule 4: the detainer takes effect once a copy is served on the person."""
        if self.copy_served_at is not None:
            self._note("detainer_copy_recorded_again", f"copy already recorded as served at {iso_z(self.copy_served_at)}")
            return
        self.copy_served_at, self.copy_served_by, self.copy_language = as_utc(at), served_by, language
        self._note("detainer_copy_served", f"copy of the detainer given to the person by {served_by} in {language}")

    def schedule_release(self, expected_at: datetime, policy: Policy, now: datetime) -> None:
        expected_at = as_utc(expected_at)
        self.expected_release_at = expected_at
        if self.status is not Status.AWAITING_RELEASE:
            self._note("release_schedule_recorded", f"expected release {iso_z(expected_at)} recorded; the case is {self.status}")
            return
        short = expected_at - now < policy.ice_advance_notice
        self._note("release_scheduled", f"release expected at {iso_z(expected_at)}; advance notice to ICE" + (" (less than the advance-notice period)" if short else ""),
                   Notice("advance-notice", ("ice",), Urgency.WARNING if short else Urgency.INFO, mark=iso_z(expected_at) or ""))

    def lift(self, at: datetime, lifted_by: str, note: str, now: datetime) -> None:
        """Rule 7: a lifted detainer releases as soon as nothing else holds the person."""
        if self.lifted_at is not None or self.status in TERMINAL_STATUSES:
            self._note("lift_recorded", f"detainer lift by {lifted_by} recorded; the case was already {self.status}")
            return
        self.lifted_at = as_utc(at)
        lifted = Notice("lifted", ALL_INVOLVED)
        if self.status is Status.AWAITING_RELEASE:
            self.no_hold_reason = "detainer lifted before T0"
            self.closed_at = now
            self._move(Status.CLOSED, "detainer_lifted", f"lifted by {lifted_by} before T0: {note}", lifted)
        elif self.status is Status.RELEASE_ORDERED:
            self._note("detainer_lifted", f"lifted by {lifted_by}; release already ordered: {note}", lifted)
        else:
            self.effects.append(lifted)
            self._order_release(f"detainer lifted by {lifted_by}: {note}", now)

    def transfer(self, at: datetime, agency: str, officer_name: str, policy: Policy, now: datetime) -> None:
        at = as_utc(at)
        if self.status in TERMINAL_STATUSES:
            # e.g. ICE arriving after the person was released: record the attempt.
            self._note("transfer_after_close", f"{agency} ({officer_name}) came at {iso_z(at)}; the case was already {self.status}",
                       Notice("pickup-after-close", ("supervisors",), Urgency.WARNING, mark=iso_z(at) or ""))
            return
        self.transferred_at, self.transferred_to = at, agency
        reason = f"handed to {agency} ({officer_name})" + self._late(at, policy)
        if agency.upper() == "ICE":
            notice = Notice("picked-up", ALL_INVOLVED)
        else:  # rule 12: the detainer follows the person; ICE must know where
            notice = Notice("transferred-out", ("ice", "supervisors"))
        self._move(Status.TRANSFERRED, "transferred", reason, notice)

    def confirm_release(self, at: datetime, released_by: str, policy: Policy, now: datetime) -> None:
        at = as_utc(at)
        if self.status in TERMINAL_STATUSES:
            # Closed without a hold, the person was still in the jail: this is when they left it.
            closed_in_jail = self.status is Status.CLOSED and self.released_at is None
            late = self._late(at, policy) if closed_in_jail else ""
            if closed_in_jail:
                self.released_at = at
            self._note("release_recorded", f"left the jail at {iso_z(at)} (released by {released_by}); the case was already {self.status}"
                       + late)
            return
        self.released_at = at
        late = self._late(at, policy)
        self._move(Status.RELEASED, "released", f"released by {released_by}{late}",
                   Notice("released", ("ice", "supervisors"), Urgency.URGENT if late else Urgency.INFO))

    def _late(self, left_at: datetime, policy: Policy) -> str:
        """'; 3h AFTER the hold deadline' where the person left after their release was due."""
        due = self.release_due(policy)
        if due is None or left_at <= due[0]:
            return ""
        return f"; {format_duration(left_at - due[0])} AFTER release was due ({due[1]}, {iso_z(due[0])})"

    # --- the passage of time ----------------------------------------------------

    def advance(self, now: datetime, policy: Policy, reports_read_through: datetime | None = None) -> None:
        """Everything that is due at `now`. Safe to call any number of times.

        `reports_read_through`: the instant through which every officer's report
        made outside the database (the form in the Prefect UI) has been read into
        it; None where no such report can be made for this case."""
        if self.status is Status.RELEASE_AUTHORIZED and self.release_authorized_at is not None:
            closes = service_due_by(self.release_authorized_at, policy)
            if now >= service_window_end(closes, reports_read_through, policy):
                self.no_hold_reason = f"no certified WSO served the warrant within {format_duration(policy.service_grace)} of T0"
                unread = ""
                if reports_read_through is not None and reports_read_through < closes:
                    since = ("have not been read (no reader has run)" if reports_read_through <= NEVER_READ
                             else f"could not be read after {iso_z(reports_read_through)}")
                    unread = (f" (officers' reports in the Prefect UI {since}; "
                              f"decided without them {format_duration(policy.report_wait)} after the window closed)")
                self.effects.append(Notice("no-service", ("supervisors",), Urgency.WARNING))
                self._order_release(f"{self.no_hold_reason}: no hold (rule 6){unread}", now)
        if self.status is Status.HELD and self.release_order_at is not None and now >= self.release_order_at:
            why = "the hold deadline is reached" if now >= self.deadline_at else f"release-order time ({format_duration(policy.release_order_lead)} before the deadline)"
            self._order_release(why, now)
        self._remind(now, policy)
        if self.status is Status.RELEASE_ORDERED:
            if self.supervisors_paged_at is None and now >= self.unconfirmed_page_at(policy):
                self.supervisors_paged_at = now
                self._note("supervisors_paged", "release not confirmed by the release desk",
                           Notice("release-unconfirmed", ("supervisors", "sheriff"), Urgency.URGENT))
            if self.overdue_alerted_at is None and self.deadline_at is not None and now >= self.deadline_at:
                self.overdue_alerted_at = now
                self._note("deadline_passed_unconfirmed", "the hold deadline has passed and the release is not confirmed",
                           Notice("deadline-passed", ("supervisors", "sheriff"), Urgency.URGENT))

    def next_due_at(self, policy: Policy) -> datetime | None:
        """The next instant at which `advance` has something to do, or None."""
        due: list[datetime] = []
        if self.status is Status.RELEASE_AUTHORIZED and self.release_authorized_at is not None:
            due.append(service_window_end(service_due_by(self.release_authorized_at, policy), None, policy))
        if self.status is Status.HELD and self.release_order_at is not None:
            due.append(self.release_order_at)
        if self._reminders_apply():
            upcoming = upcoming_reminder_at(self.deadline_at, policy.reminder_marks, self.last_reminder_mark)
            if upcoming is not None:
                due.append(upcoming)
        if self.status is Status.RELEASE_ORDERED:
            if self.supervisors_paged_at is None:
                due.append(self.unconfirmed_page_at(policy))
            if self.overdue_alerted_at is None and self.deadline_at is not None:
                due.append(self.deadline_at)
        return min(due) if due else None

    def unconfirmed_page_at(self, policy: Policy) -> datetime:
        """Rule 8 pages supervisors `page_supervisors_before` the deadline. A
        release ordered without a hold has no lawful wait at all, so the desk
        gets the same margin from the order instead."""
        assert self.release_ordered_at is not None
        from_order = self.release_ordered_at + policy.page_supervisors_before
        if self.deadline_at is None:
            return from_order
        before_deadline = self.deadline_at - policy.page_supervisors_before
        return before_deadline if self.holds_on_authority else min(from_order, before_deadline)

    # --- views -------------------------------------------------------------------

    def release_due(self, policy: Policy) -> tuple[datetime, str] | None:
        """When our custody of the person on the detainer had to end, and why
        (None while no release is authorised: the person is held on the jail's
        own charges). With a hold, its deadline. Without one, the moment they
        would otherwise have gone free, plus the officer's window where the
        detainer could have authorised a hold (rule 6), plus the release desk's
        allowance for a release ordered without a hold (docs/rules.md); a lift
        brings it to the lift plus that allowance."""
        if self.release_authorized_at is None or self.deadline_at is None:
            return None
        allowance = policy.page_supervisors_before
        free_at = self.release_authorized_at
        if self.hold_authorized:
            due, why = self.deadline_at, "the hold deadline"
        elif policy.mode is Mode.WSO and not authority_problems(self.detainer, policy) and self.deadline_at > free_at:
            due = service_due_by(free_at, policy) + allowance
            why = f"no hold: the service window's close plus the desk's {format_duration(allowance)}"
        else:
            due, why = free_at + allowance, f"no authority to hold: the release authorisation plus the desk's {format_duration(allowance)}"
        if self.lifted_at is not None and max(self.lifted_at, free_at) + allowance < due:
            due, why = max(self.lifted_at, free_at) + allowance, f"the detainer's lift plus the desk's {format_duration(allowance)}"
        return due, why

    @property
    def left_custody_at(self) -> datetime | None:
        if self.status is Status.TRANSFERRED:
            return self.transferred_at
        if self.status is Status.RELEASED:
            return self.released_at
        if self.status is Status.CLOSED:
            return self.released_at or self.closed_at
        return None

    def minutes_past_due(self, policy: Policy, now: datetime) -> int | None:
        """How long the person was (or is, still in custody) held past the time
        their release was due, in whole minutes; None if it is not due yet, or
        if the case closed without a hold and no release was reported."""
        due = self.release_due(policy)
        if due is None or (self.status is Status.CLOSED and self.released_at is None):
            return None
        until = self.left_custody_at or now
        if until <= due[0] and self.left_custody_at is None:
            return None
        return max(int((until - due[0]).total_seconds() // 60), 0)

    @property
    def holds_on_authority(self) -> bool:
        """Authorised and not lifted: the hold's deadline is still the time the
        person may be kept until (after a lift, release is due at once)."""
        return self.hold_authorized and self.lifted_at is None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def warnings(self) -> list[str]:
        found = []
        if self.is_open and self.copy_served_at is None:
            found.append("no copy of the detainer has been recorded as given to the person (rule 4)")
        if self.is_open and not self.detainer.identity_verified:
            found.append("identity not verified against the booking: no hold, supervisor review")
        return found

    # --- internals -----------------------------------------------------------------

    def _reminders_apply(self) -> bool:
        return (self.status in (Status.HELD, Status.RELEASE_ORDERED) and self.holds_on_authority
                and self.deadline_at is not None)

    def _remind(self, now: datetime, policy: Policy) -> None:
        if not self._reminders_apply():
            return
        if now >= self.deadline_at:
            self.last_reminder_mark = timedelta(0)  # nothing left to remind of
            return
        mark = next_reminder_mark(self.deadline_at, policy.reminder_marks, now, self.last_reminder_mark)
        if mark is not None:
            self.last_reminder_mark = mark
            label = format_duration(mark)
            self._note("reminder", f"{label} before the deadline {iso_z(self.deadline_at)}",
                       Notice("reminder", ("ice", "supervisors"), Urgency.WARNING if mark <= timedelta(hours=1) else Urgency.INFO, mark=label))

    def _start_hold(self, started_at: datetime, reason: str) -> None:
        self.hold_authorized = True
        self.hold_started_at = as_utc(started_at)
        self.no_hold_reason = None
        self._move(Status.HELD, "hold_started", f"{reason}; deadline {iso_z(self.deadline_at)}",
                   Notice("hold-started", ("ice", "release-desk")))

    def _order_release(self, reason: str, now: datetime) -> None:
        self.release_ordered_at = now
        self.release_order_reason = reason
        self._move(Status.RELEASE_ORDERED, "release_ordered", reason,
                   Notice("release-order", ("release-desk", "supervisors", "ice"), Urgency.WARNING))

    def _move(self, to: Status, action: str, reason: str, *notices: Notice) -> None:
        before = self.status
        self.status = to
        self.status_reason = reason
        self.effects.append(Transition(action, before, to, reason))
        self.effects.extend(notices)

    def _note(self, action: str, reason: str, *notices: Notice) -> None:
        self.effects.append(Transition(action, self.status, self.status, reason))
        self.effects.extend(notices)

    def drain_effects(self) -> list[Transition | Notice]:
        drained, self.effects = self.effects, []
        return drained
