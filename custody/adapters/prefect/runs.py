"""Talking to the Prefect API about the runs that mirror cases: create a case's
run, wake it when the database moved, schedule and cancel its hold steps.

Every call here is idempotent (idempotency keys, state checks), because the
bridge, the reconciler and re-executed flows may all make the same call."""
from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.states import Cancelled, Completed, Scheduled

from custody.service.officer_report import response_key

CASE_DEPLOYMENT = "custody-case/case"
HOLD_STEP_DEPLOYMENT = "custody-hold-step/hold-step"

log = logging.getLogger("custody.runs")


def stale_claim() -> timedelta:
    """How long a case run may sit Pending (claimed by a runner) or Running
    before we decide the process that had it is gone (a killed worker or serve
    process leaves it there for good: no runner picks up a Pending run). A case
    run only reads, schedules and suspends, so minutes are a wide margin."""
    return timedelta(seconds=float(os.environ.get("CUSTODY_STALE_RUN_CLAIM_SECONDS", "180")))


def case_tag(case_id: str) -> str:
    return f"case-{case_id}"


def booking_tag(booking_number: str) -> str:
    """Staff know a person by the booking number: the runs' Tags filter finds it."""
    return f"booking-{booking_number}"


def create_case_run(case_id: str, facility: str, booking_number: str, ended_with: str | None = None) -> str:
    """One run per case: the idempotency key makes a second call return the first
    run (in whatever state it is). `ended_with`: the case has already ended, and
    the run is created Completed with that outcome instead of Scheduled."""
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(CASE_DEPLOYMENT)
        run = client.create_flow_run_from_deployment(
            deployment.id, parameters={"case_id": case_id}, name=f"case-{case_id}",
            tags=[case_tag(case_id), booking_tag(booking_number), f"facility-{facility}"],
            idempotency_key=f"custody-case-{case_id}",
            **({"state": Completed(message=ended_with)} if ended_with else {}))
        return str(run.id)


def wake_case_run(flow_run_id: str) -> str:
    """Bring a waiting run back to re-read the database. A run suspended for the
    officer's form cannot be resumed without input; once the case no longer
    needs that input it is rescheduled instead. A crashed or failed run of an
    open case is rescheduled too: it re-runs from the top and catches up."""
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
        state = run.state.type if run.state else None
        if state is StateType.PAUSED:
            result = client.resume_flow_run(run.id)
            if result.status is SetStateStatus.ACCEPT:
                return "resumed"
            client.set_flow_run_state(run.id, Scheduled(), force=True)
            return "rescheduled"
        if state in (StateType.CRASHED, StateType.FAILED):
            client.set_flow_run_state(run.id, Scheduled(), force=True)
            return "restarted"
        if is_stale_claim(run):
            client.set_flow_run_state(run.id, Scheduled(), force=True)
            log.warning("case run %s was %s since %s: its process is gone; rescheduled", run.name,
                        state.value.lower(), run.state.timestamp)
            return "reclaimed"
        return f"left {state.value.lower() if state else 'unknown'}"


def is_stale_claim(run: FlowRun) -> bool:
    """Pending or Running for longer than any live case run takes: its process is gone."""
    state = run.state.type if run.state else None
    return (state in (StateType.PENDING, StateType.RUNNING) and run.state.timestamp is not None
            and datetime.now(timezone.utc) - run.state.timestamp > stale_claim())


# A case run in one of these states runs no code now: nothing of it can race
# with the sync. (Running and Pending runs have a process, or are about to.)
IDLE = {StateType.PAUSED, StateType.SCHEDULED, StateType.CRASHED, StateType.FAILED}


def read_case_run(flow_run_id: str) -> FlowRun:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(flow_run_id))


def end_case_run(flow_run_id: str, outcome: str) -> bool:
    """End the run of an ended case as the flow itself would (Completed, with
    the outcome the flow returns as its message), without starting it. Not
    forced: a run that a runner has just started goes on, re-reads the ended
    case and completes by itself; its later suspend, if it read the case
    before it ended, is refused by the server (a Completed run cannot pause),
    so it stays Completed. True if the run is now Completed."""
    with get_client(sync_client=True) as client:
        result = client.set_flow_run_state(UUID(flow_run_id), Completed(message=outcome))
        return result.status is SetStateStatus.ACCEPT and result.state is not None and result.state.type is StateType.COMPLETED


def schedule_hold_step(case_id: str, step: str, at: datetime, facility: str, booking_number: str) -> str:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(HOLD_STEP_DEPLOYMENT)
        run = client.create_flow_run_from_deployment(
            deployment.id, parameters={"case_id": case_id, "step": step, "at": at.isoformat()}, name=f"case-{case_id}-{step}",
            tags=[case_tag(case_id), booking_tag(booking_number), f"facility-{facility}", "hold-step"],
            idempotency_key=f"custody-hold-{case_id}-{step}-{at.isoformat()}", state=Scheduled(scheduled_time=at))
        return str(run.id)


def cancel_scheduled_for_case(case_id: str) -> int:
    """A pickup, a lift or a release ends the hold: what was scheduled for it goes."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[case_tag(case_id), "hold-step"]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))))
        for run in runs:
            client.set_flow_run_state(run.id, Cancelled(message="the hold ended"), force=True)
        return len(runs)


def read_report_input(flow_run_id: str, wait_key: str, client=None) -> tuple[Any, datetime] | None:
    """The officer's form that answered a run's wait, as Prefect stored it: its
    value and the moment it was stored; None if no form answered it."""
    if client is None:
        with get_client(sync_client=True) as client:
            return read_report_input(flow_run_id, wait_key, client)
    key = response_key(wait_key)
    for found in client.filter_flow_run_input(UUID(flow_run_id), key_prefix=key, limit=5, exclude_keys=set()):
        if found.key == key:
            return found.decoded_value, found.created
    return None


def prefect_reachable(timeout: float = 2.0) -> bool:
    try:
        with get_client(sync_client=True, httpx_settings={"timeout": timeout}) as client:
            return client.api_healthcheck() is None
    except Exception:
        return False
