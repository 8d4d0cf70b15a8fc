"""A hold step: a future run at one instant of a case's hold (a reminder mark,
the release order, the page, the deadline), visible in the UI at its time. It
asks the core what is due and wakes the case run. The legal action does not
depend on it: the backstop orders the same release from the database alone.
The deadline's step fails while the release is unconfirmed, so the case shows
red and the automation on failed hold steps pages supervisors."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from prefect import flow, get_run_logger

from custody.service.views import format_local
from custody.wiring import core_for_run
from tasks.case_tasks import advance_case, read_case
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
        if step == "deadline":
            view = read_case(core, case_id)
            if view["status"] == "release_ordered":
                # Red in the UI, and the shipped automation pages supervisors: a green
                # "nothing due" here once hid a person held past the limit.
                raise RuntimeError(f"case {case_id}: the hold deadline ({format_local(view['deadline_at'], core.policy)}) "
                                   "has passed and the release is not confirmed. Release the person now unless another "
                                   "lawful hold applies, and confirm it (the confirm-release form)")
    return actions
