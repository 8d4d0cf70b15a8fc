"""Message text for the outbox: short, plain words, and no more personal data
than the recipient needs. The person's name goes only to those who must pick
the person out (ICE, the release desk, the serving officers); the A-number only
to ICE; the date of birth to nobody."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.case import Case
from models.clock import iso_z
from models.domain import TERMINAL_STATUSES, Notice, Status, Urgency
from models.policy import Policy
from models.rules import service_due_by

NAME_GROUPS = frozenset({"ice", "release-desk", "wso"})

_SUBJECTS = {
    "detainer-received": "Detainer received",
    "identity-review": "Identity not verified: supervisor review",
    "already-released": "Detainer for a person already released",
    "detainer-reissued": "Re-issued detainer merged",
    "release-notice": "Release authorised (notice of release)",
    "serve-warrant": "Serve the ICE warrant now",
    "no-hold": "No authority to hold: release as normal",
    "service-refused": "Warrant service refused",
    "late-service": "Warrant served too late: no hold",
    "advance-notice": "Advance notice of scheduled release",
    "hold-started": "Warrant served: hold started",
    "reminder": "Hold deadline reminder",
    "release-order": "RELEASE ORDER",
    "no-service": "No WSO service within the grace: no hold",
    "release-unconfirmed": "Release not confirmed",
    "deadline-passed": "Hold deadline passed, release not confirmed",
    "lifted": "Detainer lifted",
    "picked-up": "Taken into ICE custody",
    "transferred-out": "Transferred to another agency",
    "pickup-after-close": "Pickup attempt after the case closed",
    "released": "Released from the jail",
    "t0-corrected": "Release time corrected: earlier deadline",
    "hold-withdrawn": "Hold withdrawn: it had no authority",
}


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


@dataclass(frozen=True)
class Addressed:
    """One notice written out for one recipient group, as the outbox keeps it
    until the relay delivers it: `key` makes the same notice never queued twice."""
    key: str
    case_id: str
    kind: str
    group: str
    urgency: str
    message: Message
    at: datetime


def _when(instant: datetime | None, policy: Policy) -> str:
    if instant is None:
        return "not set"
    local = policy.local(instant)
    return f"{local:%Y-%m-%d %H:%M %Z} ({iso_z(instant)})"


# What the jail's own staff must do on reading a notice, said in the notice
# itself: a page at 3 a.m. must not need the manual. ICE's notices tell ICE a
# fact and ask nothing of it.
_TO_DO = {
    "identity-review": "What to do: check that the person held is the person the detainer names; if so, enter the "
                       "detainer again with identity verified (the record-detainer form). Until then nobody is held on it.",
    "no-hold": "What to do: release as normal when the jail's own release is done; do not hold for ICE.",
    "late-service": "What to do: release as normal; the service came too late to authorise a hold.",
    "no-service": "What to do: release as normal; no hold may be made.",
    "reminder": "What to do: make sure ICE picks the person up before the deadline; otherwise the release order "
                "comes at its time.",
    "release-order": "What to do: release the person now unless another lawful hold applies; confirm the release "
                     "(the confirm-release form or the jail system).",
    "release-unconfirmed": "What to do: find out now whether the person has left. If so, the release desk confirms it "
                           "(the confirm-release form); if not, release the person now.",
    "deadline-passed": "What to do: the person is held past the legal limit unless already gone. Release now, confirm "
                       "the release, and record why it was late.",
    "hold-withdrawn": "What to do: release the person now unless another lawful hold applies, and confirm the release.",
    "pickup-after-close": "What to do: nothing for the case; check why ICE came after it closed.",
}


def _subject(notice: Notice, case: Case) -> str:
    subject = f"[{case.case_id}] {_SUBJECTS.get(notice.kind, notice.kind)}"
    return f"URGENT {subject}" if notice.urgency is Urgency.URGENT else subject


def render(notice: Notice, case: Case, group: str, policy: Policy) -> Message:
    subject = _subject(notice, case)
    lines = [
        f"Case {case.case_id}, booking {case.booking_number}, facility {case.facility}.",
    ]
    if group in NAME_GROUPS:
        lines.append(f"Person: {case.detainer.subject_name}.")
    if group == "ice":
        lines.append(f"A-number {case.detainer.a_number}, ICE event {case.detainer.ice_event_number}.")
    lines.append(f"Status: {case.status}.")
    if case.status_reason:
        lines.append(f"Why: {case.status_reason}.")
    if case.t0 is not None:
        lines.append(f"T0: {_when(case.t0, policy)}.")
    if case.deadline_at is not None:
        lines.append(f"Hold deadline: {_when(case.deadline_at, policy)}.")
    if notice.kind == "advance-notice" and case.expected_release_at is not None:
        lines.append(f"Expected release: {_when(case.expected_release_at, policy)}.")
    if notice.kind == "reminder":
        lines.append(f"{notice.mark} left before the hold deadline.")
    if notice.kind == "hold-withdrawn":
        due = case.release_due(policy)
        lines.append(f"The hold had no authority ({case.no_hold_reason}); release was due {_when(due[0] if due else None, policy)}.")
    if notice.kind == "service-refused" and notice.detail:
        lines.append(f"Refused because: {notice.detail}.")
    if group != "ice":
        lines += _what_to_do(notice, case, policy)
    return Message(subject=subject, body="\n".join(lines))


def _what_to_do(notice: Notice, case: Case, policy: Policy) -> list[str]:
    if notice.kind in ("serve-warrant", "service-refused") and case.t0 is not None:
        closes = _when(service_due_by(case.t0, policy), policy)
        if notice.kind == "serve-warrant":
            return [f"What to do: serve the ICE warrant {case.detainer.warrant_number or ''} inside the jail by {closes}, "
                    f"then submit the form of the case's run (case-{case.case_id}, Resume) in the Prefect UI.".replace("  ", " ")]
        return [f"What to do: the officer may correct the report and submit it again by {closes}; after that no hold "
                "may be made."]
    return [_TO_DO[notice.kind]] if notice.kind in _TO_DO else []


# Prompts to the jail's own staff that ask for an act, each with the case
# statuses in which that act is still wanted. Sent after the act became moot (a
# relay down for hours, recipients configured late), a "RELEASE ORDER" for
# someone who left long ago teaches people to ignore the real one; so such a
# message is dropped, with the reason kept. Notices to ICE are never dropped:
# rule 9 counts what ICE was told, however late.
_STILL_WANTED = {
    # asked before T0 too: a re-issued detainer's new warrant, a report refused before the release
    "serve-warrant": {Status.AWAITING_RELEASE, Status.RELEASE_AUTHORIZED},
    "service-refused": {Status.AWAITING_RELEASE, Status.RELEASE_AUTHORIZED},
    "reminder": {Status.HELD},
    "identity-review": {Status.AWAITING_RELEASE, Status.RELEASE_AUTHORIZED},
}
_UNTIL_THE_CASE_ENDS = {"no-hold", "late-service", "no-service", "release-order", "release-unconfirmed", "deadline-passed",
                        "hold-withdrawn"}


def purpose_passed(kind: str, group: str, case: Case, now: datetime) -> str | None:
    """Why a queued message no longer serves its purpose at `now`, or None if it still does."""
    if group == "ice":
        return None
    ended = f"the case ended ({case.status}: {case.status_reason or '-'})"
    if kind in _UNTIL_THE_CASE_ENDS:
        return ended if case.status in TERMINAL_STATUSES else None
    wanted = _STILL_WANTED.get(kind)
    if wanted is None or case.status in wanted:
        if kind == "reminder" and case.deadline_at is not None and now >= case.deadline_at:
            return f"the deadline it counted down to passed at {iso_z(case.deadline_at)}"
        return None
    return ended if case.status in TERMINAL_STATUSES else f"the case moved on ({case.status}: {case.status_reason or '-'})"


def address(notice: Notice, case: Case, policy: Policy, at: datetime) -> list[Addressed]:
    """The notice written for each of its groups, decided at `at`."""
    return [Addressed(notice.key_for(case.case_id, group), case.case_id, notice.kind, group, str(notice.urgency),
                      render(notice, case, group, policy), at) for group in notice.groups]
