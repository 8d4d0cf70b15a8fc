"""A hold step: a future run at one instant of a case's hold (a reminder mark,
the release order, the page, the deadline), visible in the UI at its time. It
asks the core what is due and wakes the case run. The legal action does not
depend on it: the backstop orders the same release from the database alone."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from prefect import flow, get_run_logger

from custody.wiring import core_for_run
from tasks.case_tasks import advance_case
from tasks.sync import sync_case_task


@flow(name="custody-hold-step", persist_result=False)
def hold_step(case_id: str, step: str, at: str | None = None) -> list[dict]:
    if at:
        # Runners may start a run a few seconds early; the step is due at its instant.
        early = (datetime.fromisoformat(at) - datetime.now(timezone.utc)).total_seconds()
        if 0 < early < 30:
            time.sleep(early)
    with core_for_run() as core:
        actions = advance_case(core, case_id, f"hold-step:{step}")
        get_run_logger().info("case %s %s: %s", case_id, step, [a["action"] for a in actions] or "nothing due (already done)")
        sync_case_task(core, case_id)
    return actions
