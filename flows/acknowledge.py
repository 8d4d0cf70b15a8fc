"""The acknowledgement form: records staff who hear back from ICE (a phone
call, an email reply) record that ICE acknowledged a notice. In the Prefect UI
it is the `acknowledge` deployment's Run form; it becomes a
`notice.acknowledged` event like any other, so it is validated, attributed and
audited the same way."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field

from custody.service.core import Sender
from custody.service.intake import ingest
from custody.wiring import core_for_run
from models.events import ICE_NOTICES


@flow(name="custody-acknowledge-notice", persist_result=False)
def acknowledge_notice(
    booking_number: str = Field(min_length=1, description="The person's booking number"),
    notice: Literal[ICE_NOTICES] = Field(description="Which notice ICE acknowledged"),  # type: ignore[valid-type]
    acknowledged_by: str = Field(min_length=1, description="Who at ICE acknowledged it (name, office)"),
) -> dict:
    event = {"event_id": f"ack-{flow_run.get_id()}", "type": "notice.acknowledged",
             "occurred_at": datetime.now(timezone.utc).isoformat(), "booking_number": booking_number,
             "notice": notice, "acknowledged_by": acknowledged_by}
    with core_for_run() as core:
        result = ingest(core, event, Sender("prefect-ui", frozenset({"notice.acknowledged"}))).as_dict()
    if result["result"] == "rejected":
        raise ValueError(f"not recorded: {result['reason']}")
    get_run_logger().info("acknowledgement recorded for case %s", result.get("case_id"))
    return result
