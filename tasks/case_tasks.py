"""Prefect tasks: each one unit of work on the core its run was handed, in one transaction."""
from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from custody.adapters.prefect.mirror import hold_steps, mirror_digest
from custody.adapters.prefect.runs import read_report_input
from custody.service.backstop import SweepReport, advance_cases
from custody.service.core import Core
from custody.service.officer_report import record_report
from custody.service.views import case_summary


@task(name="read-case", cache_policy=NO_CACHE)
def read_case(core: Core, case_id: str) -> dict[str, Any]:
    with core.uow(read_only=True) as uow:
        case = uow.cases.get(case_id)
        if case is None:
            raise ValueError(f"case {case_id} is not in the database")
        view = case_summary(case, core.policy, core.clock.now())
    view["version"] = case.version
    view["mode"] = str(core.policy.mode)
    view["hold_steps"] = hold_steps(case, core.policy)
    # What this run acts on, as read now: the sync compares it with the case
    # later and wakes the run only when it differs.
    view["mirror_digest"] = mirror_digest(case, core.policy)
    return view


@task(name="mark-synced", cache_policy=NO_CACHE)
def mark_synced(core: Core, case_id: str, version: int, digest: str | None = None) -> None:
    with core.uow() as uow:
        uow.runs.synced(case_id, version, digest)
        uow.commit()


@task(name="record-officer-report", cache_policy=NO_CACHE)
def record_officer_report(core: Core, case_id: str, wait_key: str) -> dict[str, Any] | None:
    """The form that answered this run's wait, through the same intake as the
    reader in `custody up` (custody/service/officer_report.py): whichever is first records
    it, the other finds it recorded. None if the wait was answered without a form."""
    from prefect.context import get_run_context

    flow_run_id = get_run_context().task_run.flow_run_id
    stored = read_report_input(str(flow_run_id), wait_key)
    if stored is None:
        return None
    value, submitted_at = stored
    return record_report(core, case_id, wait_key, value, submitted_at).as_dict()


@task(name="advance-case", cache_policy=NO_CACHE)
def advance_case(core: Core, case_id: str, actor: str) -> list[dict[str, Any]]:
    with core.uow(read_only=True) as uow:
        case = uow.cases.get(case_id)
    if case is None:  # a step for a case we do not have is a fault worth an alert, not a no-op
        raise ValueError(f"case {case_id} is not in the database")
    due = case.next_due_at(core.policy) if case.is_open else None
    report = SweepReport(core.clock.now())
    if due is not None:
        # A hold step waits for a sweep that holds the case, then finds it done.
        advance_cases(core, [(case_id, due)], actor, report, skip_locked=False)
    if report.not_advanced:  # a failed step alerts the supervisors; "nothing due" would hide it
        raise RuntimeError(f"case {case_id}: every attempt to write it failed (other writers held the database, or it "
                           "failed), so nothing was decided; the backstop decides it from the database on its next pass")
    return [a.__dict__ for a in report.actions]

