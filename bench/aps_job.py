"""The job the APScheduler peer runs (its own module, so the job store's
textual reference `bench.aps_job:order_release` names the same code in every
process)."""
from __future__ import annotations

import threading
import time
from datetime import datetime

_core = None
_lock = threading.Lock()
started: list[tuple[str, float]] = []  # (case id, wall time the job function began)
finished: list[tuple[str, float]] = []  # (case id, wall time it returned: its transaction committed)


def core():
    global _core
    with _lock:
        if _core is None:
            from custody.config import Settings
            from custody.wiring import build_core
            _core = build_core(Settings.from_env())
        return _core


def order_release(case_id: str, due_iso: str) -> int:
    """The same compare-and-set step the backstop takes for one due case."""
    started.append((case_id, time.time()))
    from custody.service.backstop import SweepReport, advance_cases

    c = core()
    report = SweepReport(c.clock.now())
    advance_cases(c, [(case_id, datetime.fromisoformat(due_iso))], "apscheduler", report)
    if report.actions:
        finished.append((case_id, time.time()))
    return len(report.actions)
