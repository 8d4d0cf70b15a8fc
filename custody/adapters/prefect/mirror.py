"""What a case's Prefect run mirrors, and a digest of it.

The case run is woken (a new process) only to act on the database: to
schedule the hold's steps at their instants, to show the officer's form with
the facts an officer needs (warrant, T0, deadline), to wait for what the
status calls for, or to end with the case. Many commits change none of that
(a reminder sent, a notice copy recorded, an acknowledgement, an outbox row):
they move the case's version, not its mirror. The digest lets the sync tell
the two apart without starting a process."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from models.case import Case
from models.clock import iso_z
from models.durations import format_duration
from models.policy import Policy

DIGEST_VERSION = "mirror-1"  # bump when the view's shape changes: every stored digest then differs once


def hold_steps(case: Case, policy: Policy) -> list[tuple[str, str]]:
    """The instants at which the hold has something due, as named future runs
    (none unless the hold is authorised and the case open)."""
    if not (case.hold_authorized and case.is_open) or case.deadline_at is None:
        return []
    steps = [(f"reminder-{format_duration(m)}", case.deadline_at - m) for m in policy.reminder_marks]
    steps += [("release-order", case.release_order_at),
              ("page-supervisors", case.deadline_at - policy.page_supervisors_before),
              ("deadline", case.deadline_at)]
    return [(name, iso_z(at)) for name, at in steps]


def mirror_view(case: Case, policy: Policy) -> dict[str, Any]:
    """Everything the case run acts on or shows; nothing it does not (the
    timeline, notices, reminders already sent), so that those move no process."""
    return {
        "case_id": case.case_id,
        "booking_number": case.booking_number,
        "facility": case.facility,
        "status": str(case.status),
        "mode": str(policy.mode),
        "timezone": policy.timezone.key,  # the form shows T0 and the deadline in jail time
        "hold_steps": [list(step) for step in hold_steps(case, policy)],
        "warrant_form": case.detainer.warrant_form and str(case.detainer.warrant_form),
        "warrant_number": case.detainer.warrant_number,
        "t0": iso_z(case.t0),
        "deadline_at": iso_z(case.deadline_at),
    }


def mirror_digest(case: Case, policy: Policy) -> str:
    """A deterministic digest of `mirror_view`: the same case facts give the
    same digest in every process (canonical JSON, sorted keys, SHA-256)."""
    text = json.dumps([DIGEST_VERSION, mirror_view(case, policy)], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()
