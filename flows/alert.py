"""The target of the automations: turn a Prefect incident into a notification
through the project's own outbox (and so through Apprise), to supervisors and
the sheriff."""
from __future__ import annotations

from prefect import flow, get_run_logger

from models.handlers import raise_operations_alert


@flow(name="custody-alert", persist_result=False)
def operations_alert(what: str, flow_run_name: str = "", flow_name: str = "", event_id: str = "") -> int:
    from tasks.context import core

    subject = f"{flow_name or 'a custody run'} {what}".strip()
    detail = f"Prefect reported {what} for run {flow_run_name or '?'} of flow {flow_name or '?'}."
    added = raise_operations_alert(core(), what=what.replace(" ", "-"), subject=subject, detail=detail,
                                   dedupe=event_id or f"{flow_name}:{flow_run_name}:{what}")
    get_run_logger().warning("operations alert: %s (%d notification(s) queued)", subject, added)
    return added
