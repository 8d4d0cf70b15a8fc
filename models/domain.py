"""Value objects of the custody domain. Plain Python: no infrastructure."""
from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, datetime
from enum import StrEnum


class Status(StrEnum):
    AWAITING_RELEASE = "awaiting_release"      # detainer on file; still held on local charges
    RELEASE_AUTHORIZED = "release_authorized"  # T0 passed; waiting for WSO service (grace running)
    HELD = "held"                              # held on the served warrant; the deadline runs
    RELEASE_ORDERED = "release_ordered"        # release desk ordered to release; not confirmed
    TRANSFERRED = "transferred"
    RELEASED = "released"
    CLOSED = "closed"                          # no hold was or will be made; nothing left to do


OPEN_STATUSES = frozenset({Status.AWAITING_RELEASE, Status.RELEASE_AUTHORIZED, Status.HELD, Status.RELEASE_ORDERED})
TERMINAL_STATUSES = frozenset({Status.TRANSFERRED, Status.RELEASED, Status.CLOSED})


class DetainerForm(StrEnum):
    I247A = "I-247A"  # Immigration Detainer - Notice of Action (box 1 asks for custody)
    I247G = "I-247G"  # Request for Voluntary Notification (Gonzalez v. ICE): notify only
    I247D = "I-247D"  # legacy Request for Voluntary Action
    I247N = "I-247N"  # legacy Request for Voluntary Notification: notify only


class WarrantForm(StrEnum):
    I200 = "I-200"  # Warrant for Arrest of Alien
    I205 = "I-205"  # Warrant of Removal/Deportation


class ReleaseReason(StrEnum):
    BOND_POSTED = "bond_posted"
    SENTENCE_COMPLETE = "sentence_complete"
    CHARGES_DISMISSED = "charges_dismissed"
    COURT_ORDER = "court_order"
    OTHER = "other"


@dataclass(frozen=True)
class Detainer:
    a_number: str
    ice_event_number: str
    form: DetainerForm
    requests_custody: bool
    issuing_office: str
    issued_at: datetime
    received_at: datetime
    warrant_form: WarrantForm | None
    warrant_number: str | None
    identity_verified: bool
    subject_name: str
    subject_dob: date
    event_id: str


@dataclass(frozen=True)
class RosterEntry:
    """One officer's line on the WSO roster as it stood from valid_from until valid_to."""
    badge: str
    name: str
    certified_on: date
    expires_on: date
    facility: str
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def certified_on_day(self, day: date) -> bool:
        return self.certified_on <= day <= self.expires_on


@dataclass(frozen=True)
class Service:
    """A WSO's service of the ICE warrant on the person."""
    officer_badge: str
    warrant_number: str
    location: str
    served_at: datetime
    event_id: str | None


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Transition:
    """What the audit trail records of one step: who, when, why, status before and after."""
    action: str
    status_before: Status | None
    status_after: Status | None
    reason: str


class Urgency(StrEnum):
    INFO = "info"
    WARNING = "warning"
    URGENT = "urgent"


@dataclass(frozen=True)
class Notice:
    """A notification the case owes to recipient groups. `kind` plus `mark`
    make its idempotency key, so the same notice is never queued twice."""
    kind: str
    groups: tuple[str, ...]
    urgency: Urgency = Urgency.INFO
    mark: str = ""
    detail: str = dataclass_field(default="", compare=False)  # what the text must say beyond the case's record (a refusal's why)

    def key_for(self, case_id: str, group: str) -> str:
        suffix = f"@{self.mark}" if self.mark else ""
        return f"{case_id}:{self.kind}{suffix}:{group}"
