"""The notification relay: pending outbox rows out through Apprise.

Recipients live in a standard Apprise YAML configuration, grouped by tags
(`ice`, `release-desk`, `wso`, `supervisors`, `sheriff`, `records`, and any a
county adds). Each row is claimed (compare-and-set), sent to every channel of
its group, and each attempt is recorded per channel; the row is `sent` only
when every channel has reported success. Failures back off and retry; when a
row has used its attempts the failure is escalated to the other groups, and the
row keeps being retried every ten minutes: a release order must reach the desk
in the end, however long its channel is down (found by the soak, where a row
that gave up after eight minutes of outages was never delivered). Nothing here
can delay a release: the backstop does not wait on it. A prompt to the jail's
staff whose purpose passed before it could be sent (a reminder for a case that
ended) is dropped, with the reason kept, rather than sent late as if current.
"""
from __future__ import annotations

import logging
import re
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import apprise

from custody.service.core import Core
from models.notices import purpose_passed

log = logging.getLogger("custody.relay")

NOTIFY_TYPE = {"info": apprise.NotifyType.INFO, "warning": apprise.NotifyType.WARNING, "urgent": apprise.NotifyType.FAILURE}
MAX_ATTEMPTS = {"urgent": 4, "warning": 6, "info": 8}
ESCALATE_TO = ("supervisors", "sheriff")
FIRST_BACKOFF = timedelta(seconds=15)
MAX_BACKOFF = timedelta(minutes=10)
CLAIM_LEASE = timedelta(minutes=2)  # longer than any one send can take

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_SECRET_PARAM = re.compile(r"(?i)((?:pass(?:word)?|token|secret|key|apikey|auth)=)[^&\s]+")


def redact(text: str, secrets: set[str] = frozenset()) -> str:
    """No credential of a recipient URL leaves this module: not in the database,
    the logs, the UI or an error message."""
    text = _USERINFO.sub("***@", text)
    text = _SECRET_PARAM.sub(r"\1***", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def backoff(attempt: int) -> timedelta:
    return min(MAX_BACKOFF, FIRST_BACKOFF * (2 ** max(0, attempt - 1)))


class Recipients:
    """The Apprise configuration, loaded once; a county edits the file, not code."""

    def __init__(self, path: Path, respect_rate_limits: bool = True):
        self.path = Path(path)
        self.apprise = apprise.Apprise()
        config = apprise.AppriseConfig()
        if not config.add(str(self.path)):
            raise ValueError(f"notifications: cannot read the Apprise configuration {self.path}")
        self.apprise.add(config)
        if not respect_rate_limits:  # loopback test receivers need no protection from us
            for server in self.apprise:
                server.request_rate_per_sec = 0
        self.secrets = self._secrets()

    def _secrets(self) -> set[str]:
        found: set[str] = set()
        for server in self.apprise:
            for attr in ("password", "user", "token", "apikey", "secret", "webhook_id", "webhook_token"):
                value = getattr(server, attr, None)
                if isinstance(value, str):
                    found.add(value)
        return found

    def channels(self, group: str) -> list[Any]:
        return list(self.apprise.find(tag=group, match_always=False))

    def describe(self, server: Any) -> str:
        return redact(server.url(privacy=True), self.secrets)[:500]


@dataclass
class RelayReport:
    examined: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    escalated: int = 0
    dropped: int = 0  # not sent: its purpose had passed (models/notices.py)
    details: list[str] = field(default_factory=list)


class Relay:
    def __init__(self, core: Core, recipients: Recipients, name: str | None = None):
        self.core = core
        self.recipients = recipients
        self.name = name or f"relay-{socket.gethostname()}-{threading.get_ident()}"

    def pass_once(self, limit: int = 200, only: list[int] | None = None) -> RelayReport:
        report = RelayReport()
        now = self.core.clock.now()
        with self.core.uow(read_only=True) as uow:
            ids = only if only is not None else uow.outbox.deliverable(now, limit)
        for outbox_id in ids:
            with self.core.uow() as uow:
                claimed = uow.outbox.claim(outbox_id, self.name, self.core.clock.now(), self.core.clock.now() + CLAIM_LEASE)
                uow.commit()
            if claimed:
                report.examined += 1
                self._deliver(outbox_id, report)
        return report

    def _deliver(self, outbox_id: int, report: RelayReport) -> None:
        with self.core.uow(read_only=True) as uow:
            row = uow.outbox.row(outbox_id)
            done = uow.outbox.delivered_channels(outbox_id)
            case = uow.cases.get(row["case_id"]) if row["case_id"] else None
        group = row["recipient_group"]
        passed = purpose_passed(row["kind"], group, case, self.core.clock.now()) if case is not None and not done else None
        if passed:
            with self.core.uow() as uow:
                dropped = uow.outbox.settle(outbox_id, self.name, state="dropped", dropped_reason=passed)
                uow.commit()
            report.dropped += dropped
            report.details.append(f"{row['idempotency_key']}: dropped ({passed})")
            log.info("notification %s not sent: %s", row["idempotency_key"], passed)
            return
        channels = self.recipients.channels(group)
        attempts: list[tuple[str, bool, str | None]] = []
        if not channels:
            attempts.append(("(none)", False, f"no channel is configured for group {group!r}"))
        for server in channels:
            channel = self.recipients.describe(server)
            if channel in done:
                continue
            with apprise.LogCapture(level=apprise.logging.WARNING) as captured:
                try:
                    # The bodies are plain text (models/notices.py). Said so, Apprise
                    # keeps their lines and escapes them for channels that speak HTML
                    # or Markdown; unsaid, an e-mail took the text for HTML: its plain
                    # part ran the lines together and its HTML part carried any markup
                    # a sender put in a name or a note.
                    ok = bool(server.notify(body=row["body"], title=row["subject"], body_format=apprise.NotifyFormat.TEXT,
                                            notify_type=NOTIFY_TYPE.get(row["urgency"], apprise.NotifyType.INFO)))
                    error = None if ok else (captured.getvalue().strip() or "the channel reported failure")
                except Exception as exc:  # a broken plugin must not stop the relay
                    ok, error = False, f"{type(exc).__name__}: {exc}"
            attempts.append((channel, ok, redact(error, self.recipients.secrets)[-1000:] if error else None))
        now = self.core.clock.now()
        all_ok = bool(channels) and all(ok for _, ok, _ in attempts)
        with self.core.uow() as uow:
            for channel, ok, error in attempts:
                uow.outbox.add_attempt(outbox_id, now, self.name, channel, ok, error)
            if all_ok:
                settled = uow.outbox.settle(outbox_id, self.name, state="sent", sent_at=now, last_error=None)
                report.sent += settled
            else:
                tries = row["attempts"] + 1
                last_error = next((e for _, ok, e in attempts if not ok), None)
                if tries >= MAX_ATTEMPTS.get(row["urgency"], 8):
                    settled = uow.outbox.settle(outbox_id, self.name, attempts=tries, last_error=last_error,
                                                next_attempt_at=now + MAX_BACKOFF)
                    if settled:
                        escalated = self._escalate(uow, row, tries, last_error, now)  # once: its key is the row's
                        report.failed += 1 if escalated else 0
                        report.escalated += escalated
                        report.retrying += 1
                else:
                    settled = uow.outbox.settle(outbox_id, self.name, attempts=tries, last_error=last_error,
                                                next_attempt_at=now + backoff(tries))
                    report.retrying += settled
            uow.commit()
        report.details.append(f"{row['idempotency_key']}: {'sent' if all_ok else 'not sent'}")

    def _escalate(self, uow, row, tries: int, last_error: str | None, now: datetime) -> int:
        """A failing channel is escalated to the other groups: someone must learn
        that ICE (or the desk) was not told. The escalation carries the case and
        what failed, not the original body (it may hold personal data)."""
        targets = tuple(g for g in ESCALATE_TO if g != row["recipient_group"]) or ESCALATE_TO
        subject = f"URGENT custody: undelivered to {row['recipient_group']}: {row['subject']}"[:300]
        body = (f"A notification to the {row['recipient_group']} group could not be delivered after {tries} attempts.\n"
                f"Case: {row['case_id'] or '-'}; notice: {row['kind']}; first queued {row['created_at']:%Y-%m-%d %H:%M:%S} UTC.\n"
                f"Last error: {last_error or '-'}\nDeliver it by other means and record the acknowledgement.")
        return uow.outbox.add_alert(key=f"{row['idempotency_key']}:escalated", kind="escalation", groups=targets,
                                    urgency="urgent", subject=subject, body=body, now=now, case_id=row["case_id"])
