"""Message text for the outbox: short, plain words, and no more personal data
than the recipient needs. The person's name goes only to those who must pick
the person out (ICE, the release desk, the serving officers); the A-number only
to ICE; the date of birth to nobody."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.case import Case
from models.clock import iso_z
from models.domain import Notice, Urgency
from models.policy import Policy

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
    "release-unconfirmed": "URGENT: release not confirmed",
    "deadline-passed": "URGENT: hold deadline passed, release not confirmed",
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


def render(notice: Notice, case: Case, group: str, policy: Policy) -> Message:
    subject = f"[{case.case_id}] {_SUBJECTS.get(notice.kind, notice.kind)}"
    if notice.urgency is Urgency.URGENT and not subject.startswith("URGENT"):
        subject = "URGENT " + subject
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
    if notice.kind == "release-order":
        lines.append("Release the person now unless another lawful hold applies; confirm the release.")
    return Message(subject=subject, body="\n".join(lines))


def address(notice: Notice, case: Case, policy: Policy, at: datetime) -> list[Addressed]:
    """The notice written for each of its groups, decided at `at`."""
    return [Addressed(notice.key_for(case.case_id, group), case.case_id, notice.kind, group, str(notice.urgency),
                      render(notice, case, group, policy), at) for group in notice.groups]
