"""Bringing Prefect in line with the database, never the other way round."""
from __future__ import annotations

import logging
from typing import Any

import httpx
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound

from custody.adapters.prefect.artifacts import publish_timeline_for_run
from custody.adapters.prefect.events import publish_case_steps
from custody.adapters.prefect.mirror import mirror_digest
from custody.adapters.prefect.runs import (
    CASE_DEPLOYMENT,
    IDLE,
    cancel_scheduled_for_case,
    create_case_run,
    end_case_run,
    is_stale_claim,
    read_case_run,
    wake_case_run,
)
from custody.service.core import Core

log = logging.getLogger("custody.sync")


def sync_case(core: Core, case_id: str) -> str:
    """Create the case's run if it has none; bring it in line with the latest
    version of the case. Safe to call from anywhere, any number of times.

    A run is a new process each time it is woken, so it is woken only when
    something it mirrors changed (custody/adapters/prefect/mirror.py); otherwise the sync marks
    it in step and refreshes its timeline through the API. The run of an ended
    case is ended by the sync itself, as the flow would end it."""
    with core.uow(read_only=True) as uow:
        case = uow.cases.get(case_id)
        run = uow.runs.get(case_id)
    if case is None:
        return "no such case"
    try:
        if run is None or run["flow_run_id"] is None:
            # A case that opens ended (a detainer for someone already released) gets
            # its run for the record, created Completed: no runner ever starts it.
            ended = None if case.is_open else outcome_of(case)
            flow_run_id = create_case_run(case_id, case.facility, case.booking_number, ended_with=ended)
            with core.uow() as uow:
                uow.runs.record(case_id, flow_run_id, core.clock.now())
                uow.commit()
            if ended:
                publish_timeline_for_run(core, case_id, flow_run_id)
                return "created ended, " + _end_with_case(core, case, flow_run_id, mirror_digest(case, core.policy))
            return "created"
        if run["synced_version"] >= case.version:
            return "in step"
        digest = mirror_digest(case, core.policy)
        if not case.is_open:
            return _end_with_case(core, case, run["flow_run_id"], digest)
        if run["mirror_digest"] == digest and read_case_run(run["flow_run_id"]).state_type is StateType.PAUSED:
            # The run waits on exactly what the case still says: only the timeline moved.
            publish_timeline_for_run(core, case_id, run["flow_run_id"])
            with core.uow() as uow:
                unchanged = uow.runs.synced_unchanged(case_id, case.version, run["synced_version"], digest)
                uow.commit()
            if unchanged:
                return "in step (nothing it mirrors changed)"
            # The run wrote since we read it (it was woken meanwhile): decide as for any lagging run.
        # A waiting run is woken; a crashed or failed one is restarted.
        return wake_case_run(run["flow_run_id"])
    except Exception as exc:  # the database keeps the truth whatever failed; the reconciler retries
        with core.uow() as uow:
            uow.runs.record(case_id, None, core.clock.now(), error=f"{type(exc).__name__}: {exc}"[:500])
            uow.commit()
        why = why_not_in_step(exc)
        if why is None:  # not Prefect's absence: a fault worth its traceback
            log.exception("case %s: bringing its run in step failed; the reconciler will retry", case_id)
            return "failed"
        log.warning("case %s: %s; the reconciler will catch up", case_id, why)
        return "deferred"


def why_not_in_step(exc: BaseException) -> str | None:
    """What an outage or a Prefect that is still starting looks like, said as
    such; None for anything else (a fault in our code or a refused request)."""
    if isinstance(exc, ObjectNotFound):
        return f"Prefect has no {CASE_DEPLOYMENT} deployment yet (still starting, or deployments.serve is not running)"
    if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500:
        return f"the Prefect server answered {exc.response.status_code}"
    if isinstance(exc, (httpx.TransportError, OSError, TimeoutError)):
        return f"Prefect not reachable ({type(exc).__name__}: {exc})"
    return None


def _end_with_case(core: Core, case, flow_run_id: str, digest: str) -> str:
    """The case has ended (released, transferred, closed): its future hold steps
    go now, and a run that is not executing is ended Completed with the outcome,
    the state the flow itself returns, without a process. A run that is
    executing is left alone: it re-reads the case and ends by itself (and if it
    read the case before it ended, its suspend is refused and it re-reads)."""
    cancel_scheduled_for_case(case.case_id)
    run = read_case_run(flow_run_id)
    state = run.state_type
    if state in (StateType.COMPLETED, StateType.CANCELLED):
        outcome = "finished"  # nothing left to mirror
    elif state in IDLE or state is None or is_stale_claim(run):
        publish_timeline_for_run(core, case.case_id, flow_run_id)
        if not end_case_run(flow_run_id, outcome_of(case)):
            return f"left {state.value.lower() if state else 'unknown'}"  # it moved meanwhile: the next pass decides
        outcome = "ended"
    else:
        return f"left {state.value.lower()}"
    with core.uow() as uow:
        uow.runs.synced(case.case_id, case.version, digest)
        uow.commit()
    return outcome


def outcome_of(case) -> str:
    """What the case flow returns when it ends (flows/case.py)."""
    return f"{case.status}: {case.status_reason or ''}".strip()


def reconcile(core: Core, limit: int = 500) -> dict[str, Any]:
    with core.uow(read_only=True) as uow:
        lagging = uow.runs.out_of_sync(limit)
    outcomes: dict[str, int] = {}
    for row in lagging:
        outcome = sync_case(core, row["case_id"])
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {"examined": len(lagging), "outcomes": outcomes, "step_events": tell_case_steps(core)}


def tell_case_steps(core: Core) -> int | str:
    """The case steps not yet in Prefect's event feed, published; an outage
    defers them (their marks stay), a fault of ours is logged with its traceback."""
    try:
        return publish_case_steps(core)
    except Exception as exc:
        why = why_not_in_step(exc)
        if why is None:
            log.exception("publishing the case steps as Prefect events failed")
            return "failed"
        log.warning("case steps not published as Prefect events yet: %s", why)
        return "deferred"

