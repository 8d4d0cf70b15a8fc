"""`custody up --demo`: a small simulated jail with a compressed policy, so a
newcomer sees every path of a case in the Prefect UI within minutes.

The demo runs in its own data folder (data/demo) with 15-minute holds and a
10-minute service window; nothing in it touches the real database. One case
waits for you: open DEMO-001's run in the UI and fill in the officer's form
within the 10 minutes (badge W-1024, warrant number shown above the form).
A second start resumes the demo as it was left; `--reset` starts it clean."""
from __future__ import annotations

import logging
import random
import shutil
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from custody.service.core import Core, Sender
from custody.service.intake import ingest
from custody.service.roster import load_roster

log = logging.getLogger("custody.demo")

POLICY = """\
[jurisdiction]
name = "Demo County Jail (simulation: 15-minute holds, 10 minutes to serve)"
mode = "wso"
timezone = "America/New_York"
facilities = ["RCJ"]

[hold]
limit = "15m"
service_grace = "10m"
reminder_marks = ["10m", "5m"]
release_order_lead = "2m"
page_supervisors_before = "1m"
ice_advance_notice = "10m"
pickup_poll_interval = "1m"
"""

ROSTER = Path(__file__).resolve().parents[1] / "examples" / "roster.csv"


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _detainer(eid: str, booking: str, at: datetime, n: int, *, form: str = "I-247A", verified: bool = True) -> dict[str, Any]:
    return {"event_id": eid, "type": "detainer.received", "occurred_at": _iso(at), "booking_number": booking,
            "detainer": {"form": form, "requests_custody": form == "I-247A", "a_number": f"A2000000{n:02d}",
                         "ice_event_number": f"DEMO-{n:03d}", "issuing_office": "ICE ERO (demo)", "issued_at": _iso(at)},
            "warrant": {"form": "I-200", "number": f"I200-DEMO-{n:03d}"},
            "subject": {"name": f"Demo Person {n}", "dob": "1985-06-15", "identity_verified": verified}}


def script(start: datetime) -> list[tuple[float, Callable[[datetime], dict[str, Any]]]]:
    """(seconds after start, event at that moment). Every path of a case."""
    def release(eid, booking):
        return lambda at: {"event_id": eid, "type": "release.authorized", "occurred_at": _iso(at), "booking_number": booking, "reason": "bond_posted"}

    def served(eid, booking, n):
        return lambda at: {"event_id": eid, "type": "warrant.served", "occurred_at": _iso(at), "booking_number": booking,
                           "officer_badge": "W-1031", "warrant_number": f"I200-DEMO-{n:03d}", "location": "RCJ"}

    def simple(eid, booking, kind, **fields):
        return lambda at: {"event_id": eid, "type": kind, "occurred_at": _iso(at), "booking_number": booking, **fields}

    return [
        # 1. Waits for YOU: the officer's form in the UI (10 minutes to serve, then no hold).
        (0, lambda at: _detainer("demo-1-d", "DEMO-001", at, 1)),
        (20, release("demo-1-r", "DEMO-001")),
        # 2. Served by a WSO's device; ICE picks up inside the hold.
        (0, lambda at: _detainer("demo-2-d", "DEMO-002", at, 2)),
        (5, simple("demo-2-c", "DEMO-002", "detainer.copy_served", served_by="Records (demo)", language="Spanish")),
        (15, release("demo-2-r", "DEMO-002")),
        (30, served("demo-2-s", "DEMO-002", 2)),
        (120, simple("demo-2-x", "DEMO-002", "custody.transferred", agency="ICE", officer_name="ERO officer (demo)")),
        # 3. Never picked up: reminders, release order, the desk confirms the release.
        (0, lambda at: _detainer("demo-3-d", "DEMO-003", at, 3)),
        (10, release("demo-3-r", "DEMO-003")),
        (25, served("demo-3-s", "DEMO-003", 3)),
        # (The order comes 13 minutes after T0; the desk confirms half a minute later.)
        (820, simple("demo-3-o", "DEMO-003", "inmate.released", released_by="Release desk (demo)")),
        # 4. A notify-only request (I-247G): ICE is told, nobody is held.
        (5, lambda at: _detainer("demo-4-d", "DEMO-004", at, 4, form="I-247G")),
        (40, release("demo-4-r", "DEMO-004")),
        # 5. Lifted before release.
        (5, lambda at: _detainer("demo-5-d", "DEMO-005", at, 5)),
        (50, simple("demo-5-l", "DEMO-005", "detainer.lifted", lifted_by="ICE ERO (demo)", note="withdrawn")),
        # 6. Identity not verified: no hold, supervisor review.
        (10, lambda at: _detainer("demo-6-d", "DEMO-006", at, 6, verified=False)),
        (60, release("demo-6-r", "DEMO-006")),
        # 7. Still held on local charges: waits for its release.
        (10, lambda at: _detainer("demo-7-d", "DEMO-007", at, 7)),
        # 8. The release reached us before the detainer: the case opens knowing T0.
        (15, release("demo-8-r", "DEMO-008")),
        (35, lambda at: _detainer("demo-8-d", "DEMO-008", at, 8)),
        (60, served("demo-8-s", "DEMO-008", 8)),
    ]


class ReleaseDesk(threading.Thread):
    """The jail's release desk in the demo: it confirms each ordered release a
    little after the order appears (the scripted DEMO-008 is left for a person,
    so the page-supervisors and deadline alerts can be seen)."""

    def __init__(self, core: Core, stopping: threading.Event, delay: float, keep: frozenset[str] = frozenset({"DEMO-008"})):
        super().__init__(name="custody-demo-desk", daemon=True)
        self.core, self.stopping, self.delay, self.keep = core, stopping, delay, keep

    def run(self) -> None:
        seen: dict[str, float] = {}
        while not self.stopping.wait(2):
            with self.core.uow(read_only=True) as uow:
                ordered = [c for c in uow.cases.open() if c.status == "release_ordered" and c.booking_number not in self.keep]
            now = time.monotonic()
            for case in ordered:
                if now >= seen.setdefault(case.case_id, now + self.delay):
                    event = {"event_id": f"demo-desk-{case.case_id}", "type": "inmate.released",
                             "occurred_at": _iso(datetime.now(timezone.utc).replace(microsecond=0)),
                             "booking_number": case.booking_number, "released_by": "Release desk (demo)"}
                    log.info("demo: %s", ingest(self.core, event, Sender("demo")).line())


def simulated_jail(core: Core, stopping: threading.Event, every: float = 45.0, cases: int = 400, tag: str = "DEMO") -> None:
    """After the script, a steady stream of generated cases (one every `every`
    seconds, whatever the speed: the holds are real minutes), so the board, the
    reports and their charts fill up."""
    from custody.simulation import Timing, event_body, plan
    policy = core.policy
    timing = Timing(limit=policy.hold_limit.total_seconds(), grace=policy.service_grace.total_seconds(),
                    lead=policy.release_order_lead.total_seconds())
    jail = plan(cases, cases * every, timing, random.Random(2020), tag)
    start = time.time()
    for send in jail.sends:
        wait = start + send.at - time.time()
        if wait > 0 and stopping.wait(wait):
            return
        body = event_body(send, start, lambda epoch: _iso(datetime.fromtimestamp(epoch, timezone.utc).replace(microsecond=0)))
        body["occurred_at"] = min(body["occurred_at"], _iso(datetime.now(timezone.utc).replace(microsecond=0)))
        log.info("demo: %s", ingest(core, body, Sender("demo")).line())


class DemoFeeder(threading.Thread):
    """Feeds the script through the same intake as every sender; the core's
    commit hook tells the backstop and Prefect, as for real events."""

    def __init__(self, core: Core, wait_for_prefect: Callable[[], bool], speed: float = 1.0):
        super().__init__(name="custody-demo", daemon=True)
        self.core, self.wait_for_prefect, self.speed = core, wait_for_prefect, speed
        self._stopping = threading.Event()
        with core.uow(read_only=True) as uow:
            # A second start finds the script played: its events again would be
            # new events under used ids (other times), so it resumes instead.
            self.resumed = uow.cases.latest_for_booking("DEMO-001") is not None

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        load_roster(self.core, ROSTER.read_text(), source=str(ROSTER), actor="demo")
        self.wait_for_prefect()
        ReleaseDesk(self.core, self._stopping, delay=20 / self.speed).start()
        start = datetime.now(timezone.utc)
        for delay, make in [] if self.resumed else sorted(script(start), key=lambda item: item[0]):
            wait = start + timedelta(seconds=delay / self.speed) - datetime.now(timezone.utc)
            if wait > timedelta(0) and self._stopping.wait(wait.total_seconds()):
                return
            event = make(datetime.now(timezone.utc).replace(microsecond=0))
            result = ingest(self.core, event, Sender("demo"))
            log.info("demo: %s", result.line())
        # Each start's generated cases have bookings of their own (SIM-<start>-0001, ...).
        simulated_jail(self.core, self._stopping, tag=start.strftime("D%m%d%H%M"))


def reset(home: Path, database_url: str, prefect_database_url: str | None) -> list[str]:
    """Clear the demo's databases for `custody up --demo --reset`; what was removed."""
    if prefect_database_url:
        raise ValueError("CUSTODY_DEMO_PREFECT_DATABASE_URL: --reset clears the demo's own files only; empty that "
                         "Prefect database yourself (its old runs would answer for the new cases' ids)")
    removed = []
    if not database_url.startswith("sqlite"):
        raise ValueError("CUSTODY_DEMO_DATABASE_URL: --reset clears the demo's own files only; empty that database "
                         "yourself (its tables, triggers and functions)")
    for path in home.glob("custody.db*"):
        path.unlink()
        removed.append(str(path))
    for folder in ("prefect", "logs", "reports"):
        if (home / folder).exists():
            shutil.rmtree(home / folder)
            removed.append(str(home / folder))
    return removed


def prefect_waiter(timeout: float = 180) -> Callable[[], bool]:
    def wait() -> bool:
        from custody.adapters.prefect.runs import prefect_reachable
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if prefect_reachable():
                return True
            time.sleep(1)
        return False
    return wait
