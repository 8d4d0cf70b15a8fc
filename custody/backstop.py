"""The deadline backstop as a loop in the `custody up` process: it needs
nothing but the database. It wakes at the next due instant it reads from the
database (or when a new hold is written), and at least every `interval`."""
from __future__ import annotations

import logging
import threading
from datetime import timedelta

from models.handlers import Core, SweepReport, sweep

log = logging.getLogger("custody.backstop")


class Backstop(threading.Thread):
    def __init__(self, core: Core, interval: timedelta = timedelta(seconds=60), error_backoff: timedelta = timedelta(seconds=5)):
        super().__init__(name="custody-backstop", daemon=True)
        self.core = core
        self.interval = interval
        self.error_backoff = error_backoff
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.passes = 0
        self.last_report: SweepReport | None = None

    def poke(self, *_: object) -> None:
        """Something changed (a new hold, a new release time): re-read the next due instant."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            wait = self.interval
            try:
                report = sweep(self.core)
                self.passes += 1
                self.last_report = report
                for action in report.actions:
                    log.warning("backstop %s %s: %s -> %s (%s)", action.case_id, action.action,
                                action.status_before, action.status_after, action.reason)
                if report.next_due_at is not None:
                    until = report.next_due_at - self.core.clock.now()
                    # Still due after a full pass means a case could not be advanced
                    # (contention): try again shortly rather than spin.
                    wait = min(wait, until) if until > timedelta(0) else self.error_backoff / 25
            except Exception:  # the loop must outlive any one bad pass
                log.exception("backstop pass failed; retrying")
                wait = self.error_backoff
            self._wake.wait(wait.total_seconds())
