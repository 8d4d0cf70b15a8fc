"""The loops that run inside `custody up`, beside the HTTP endpoint: each does
one pass, then sleeps until the pass says when it is next needed, a commit
pokes it, or its interval runs out. Neither needs Prefect."""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from custody.service.backstop import SweepReport, refresh_due_instants, sweep, sweep_prepared
from custody.service.core import Core

log = logging.getLogger("custody.loops")


class PassLoop(threading.Thread):
    def __init__(self, name: str, interval: timedelta, error_backoff: timedelta = timedelta(seconds=5)):
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.error_backoff = error_backoff
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.passes = 0

    def one_pass(self) -> timedelta | None:
        """Do the work; return how long until it is next due (None: the interval)."""
        raise NotImplementedError

    def poke(self, *_: object) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                until = self.one_pass()
                self.passes += 1
                wait = self.interval if until is None else min(self.interval, until)
            except Exception:  # the loop must outlive any one bad pass
                log.exception("%s: pass failed; retrying", self.name)
                wait = self.error_backoff
            self._wake.wait(wait.total_seconds())


# The backstop wakes this long before a due instant to list what falls due
# then, and decides at the instant itself; it sleeps until SPIN before the
# instant and watches the clock for the rest (a sleeping thread wakes late).
# Other writers wait at most PREPARE for it (it holds the write lock meanwhile).
PREPARE = timedelta(milliseconds=5)
SPIN = timedelta(milliseconds=1)
# Orders falling due this soon after one another are decided each at its own
# instant in one transaction, and made durable with one commit: the later
# ones do not wait for the earlier one's commit.
HORIZON = timedelta(milliseconds=5)
# A hold written by another process (the officer's form in a flow run, `custody
# ingest`, another machine) does not poke this one: the backstop re-reads the
# next due instant at least this often. Holds are written long before their
# first due instant, so a second is ample, and the re-read is one indexed query.
REREAD = timedelta(seconds=1)


class Backstop(PassLoop):
    """The deadline backstop from the database alone: it wakes at the next due
    instant it reads (or when a new hold is written), and at least every minute."""

    def __init__(self, core: Core, interval: timedelta = timedelta(seconds=60), reread: timedelta = REREAD):
        super().__init__("custody-backstop", interval)
        self.core = core
        self.reread = reread
        self.last_report: SweepReport | None = None
        self._next_due: datetime | None = None
        self._refreshed = False

    def _refresh(self) -> int:
        """Once, after the first pass (which orders at once what the stored
        instants already show due, however many cases there are to re-read):
        due instants stored by older code or an older policy are brought up to
        date. A failure here never holds up a pass; it is tried after the next."""
        try:
            corrected = refresh_due_instants(self.core)
        except Exception:
            log.exception("backstop: could not bring the stored due instants up to date; will try again")
            return 0
        self._refreshed = True
        if corrected:
            log.warning("backstop: %d case(s) had a due instant from older code or policy; corrected", corrected)
        return corrected

    def one_pass(self) -> timedelta | None:
        report = self._prepared_pass() or sweep(self.core)
        self.last_report = report
        self._next_due = report.next_due_at
        for action in report.actions:
            log.warning("backstop %s %s: %s -> %s (%s)", action.case_id, action.action,
                        action.status_before, action.status_after, action.reason)
        if not self._refreshed and self._refresh():
            return timedelta(0)  # what the corrected instants make due is ordered at once
        until = wait_after(report, self.core.clock.now(), self.error_backoff / 25)
        return self.reread if until is None else min(max(until - PREPARE, timedelta(0)), self.reread)

    def _prepared_pass(self) -> SweepReport | None:
        """Woken just before the next due instant: read what falls due then,
        and decide it at the instant (never before it). A poke meanwhile (a new
        hold, perhaps due sooner) makes it a full pass instead."""
        at, clock = self._next_due, self.core.clock
        if at is None:
            return None
        now = clock.now()
        if not now < at <= now + 2 * PREPARE:
            return None
        return sweep_prepared(self.core, at, self._until, HORIZON)

    def _until(self, at: datetime) -> bool:
        """Wait for the instant: True once the clock has reached it; False if
        poked meanwhile, or if the clock does not get there."""
        clock = self.core.clock
        sleep = (at - SPIN - clock.now()).total_seconds()
        if sleep > 0 and self._wake.wait(sleep):
            return False
        give_up = time.monotonic() + (SPIN + PREPARE).total_seconds()
        while clock.now() < at:  # busy: yielding the CPU here costs milliseconds on a loaded machine
            if time.monotonic() > give_up or self._wake.is_set():
                return False
        return True


def wait_after(report: SweepReport, now: datetime, retry: timedelta) -> timedelta | None:
    """How long the backstop may sleep after `report`'s pass (None: nothing is
    waiting, sleep the interval). A case that came due while the pass ran (after
    it read the due list) is ordered by another pass at once: each release order
    is late only by the work in front of it, never by a pause. A case already
    due when the pass began and still due after it could not be advanced
    (contention, or an error): retry shortly rather than spin."""
    if report.next_due_at is None:
        return None
    if report.next_due_at <= report.started_at and not report.truncated:
        return retry
    return max(report.next_due_at - now, timedelta(0))


class RelayLoop(PassLoop):
    """The notification relay, so notifications go out while Prefect is down."""

    def __init__(self, relay, interval: timedelta = timedelta(seconds=5)):
        super().__init__("custody-relay", interval)
        self.relay = relay

    def one_pass(self) -> timedelta | None:
        report = self.relay.pass_once()
        if report.examined:
            log.info("relay: %d sent, %d retrying, %d failed, %d escalations, %d dropped (purpose passed)", report.sent,
                     report.retrying, report.failed, report.escalated, report.dropped)
        return None
