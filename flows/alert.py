"""The target of the automations: turn a Prefect incident into a notification
through the project's own outbox (and so through Apprise), to supervisors and
the sheriff."""
from __future__ import annotations

from prefect import flow, get_run_logger

from custody.service.alerts import raise_operations_alert
from custody.wiring import core_for_run


@flow(name="custody-alert", persist_result=False)
def operations_alert(what: str, flow_run_name: str = "", flow_name: str = "", event_id: str = "") -> int:
    """`event_id` identifies the Prefect event for the log; the notification is deduplicated per window."""
    subject = f"{flow_name or 'a custody run'} {what}".strip()
    detail = f"Prefect reported {what} for run {flow_run_name or '?'} of flow {flow_name or '?'}."
    # One notification per flow, kind of trouble and quarter hour: after an
    # outage every missed backstop slot turns Late at once, and the sheriff
    # needs one page about it, not sixty.
    with core_for_run() as core:
        now = core.clock.now()
        window = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
        added = raise_operations_alert(core, what=what.replace(" ", "-"), subject=subject, detail=detail,
                                       dedupe=f"{flow_name}:{what}:{window.isoformat()}")
    get_run_logger().warning("operations alert: %s (%d notification(s) queued)", subject, added)
    return added
