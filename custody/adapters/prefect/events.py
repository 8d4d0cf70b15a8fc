"""Every step of a case as a Prefect event (`custody.case.hold-started`, ...),
so that operations staff can watch the feed and build their own automations in
the UI. The case is the event's resource, its run a related resource.

The audit trail is the source: each entry becomes one event, published after
it committed, by whichever process gets there first (the bridge of `custody
up` after each sync, the reconciler every minute). An event's id is derived
from its entry, so one published twice is stored once. An event is a
notification of a fact the database already holds, never the fact itself:
with Prefect down the marks stay where they were and the steps are published
when it returns."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from custody.service.core import Core
from models.clock import iso_z

log = logging.getLogger("custody.adapters.prefect.events")

PREFIX = "custody.case."
_NAMESPACE = uuid.UUID("6d7e4a0c-5c1f-4f0e-9a57-0c0570000001")
BATCH = 200


def event_name(action: str) -> str:
    return PREFIX + action.replace("_", "-")


def step_event(entry: Any) -> dict[str, Any]:
    """One audit entry as the Prefect event (the JSON of prefect.events.Event)."""
    case_id = entry["case_id"]
    resource = {"prefect.resource.id": f"custody.case.{case_id}", "prefect.resource.name": f"case-{case_id}",
                "custody.status": entry["status_after"] or "", "custody.status-before": entry["status_before"] or "new"}
    related = [{"prefect.resource.id": f"prefect.flow-run.{entry['flow_run_id']}", "prefect.resource.role": "flow-run",
                "prefect.resource.name": f"case-{case_id}"}]
    at: datetime = entry["at"]
    return {
        "id": str(uuid.uuid5(_NAMESPACE, entry["entry_hash"])),
        "occurred": iso_z(at),
        "event": event_name(entry["action"]),
        "resource": resource,
        "related": related,
        "payload": {"reason": entry["reason"], "actor": entry["actor"], "source_event_id": entry["source_event_id"],
                    "status_before": entry["status_before"], "status_after": entry["status_after"], "seq": entry["seq"]},
    }


def publish_case_steps(core: Core, limit: int = 2000) -> int:
    """Publish the steps not yet told, oldest first; the number published. Raises
    when Prefect cannot take them (the caller classifies it, the marks stay)."""
    from prefect.client.orchestration import get_client

    published = 0
    while published < limit:
        with core.uow(read_only=True) as uow:
            entries = uow.step_events.untold(BATCH)
        if not entries:
            break
        with get_client(sync_client=True) as client:
            response = client.request("POST", "/events", json=[step_event(e) for e in entries])
            response.raise_for_status()
        marks: dict[str, int] = {}
        for e in entries:
            marks[e["chain"]] = max(marks.get(e["chain"], 0), e["seq"])
        with core.uow() as uow:
            uow.step_events.told(marks)
            uow.commit()
        published += len(entries)
    return published
