"""The notification relay as a deployment (every minute). The same relay also
runs inside `custody up`, so notifications go out while Prefect is down; two
relays at once never send a row twice (rows are claimed)."""
from __future__ import annotations

import os
from pathlib import Path

from prefect import flow, get_run_logger


@flow(name="custody-relay", persist_result=False)
def relay_notifications() -> dict:
    from custody.adapters.apprise_relay import Recipients, Relay
    from custody.wiring import core_for_run

    path = Path(os.environ.get("CUSTODY_APPRISE_CONFIG", ""))
    logger = get_run_logger()
    if not path.is_file():
        logger.warning("notifications are not configured (%s): rows wait in the outbox", path)
        return {"configured": False}
    with core_for_run() as core:
        report = Relay(core, Recipients(path), name="relay-deployment").pass_once()
    logger.info("relay: %d sent, %d retrying, %d failed, %d escalations, %d dropped (purpose passed)", report.sent,
                report.retrying, report.failed, report.escalated, report.dropped)
    return {"configured": True, "sent": report.sent, "retrying": report.retrying, "failed": report.failed,
            "dropped": report.dropped}
