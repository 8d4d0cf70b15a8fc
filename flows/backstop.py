"""The deadline backstop and the reconciler as flows on an interval.

The backstop orders every due release from the database alone (the same pass
that `custody sweep` and the `custody up` process run), then brings the case
runs it touched up to date. The reconciler creates runs that are missing (a
detainer accepted while Prefect was down) and wakes runs that lag behind the
database, so Prefect always catches up with the database."""
from __future__ import annotations

from prefect import flow, get_run_logger

from custody.adapters.prefect.sync import reconcile
from custody.service.backstop import sweep
from custody.wiring import core_for_run
from tasks.artifacts import publish_board


@flow(name="custody-backstop", persist_result=False)
def backstop() -> dict:
    with core_for_run() as core:
        report = sweep(core, actor="backstop-deployment")
        logger = get_run_logger()
        for action in report.actions:
            logger.warning("%s %s: %s -> %s (%s)", action.case_id, action.action, action.status_before, action.status_after,
                           action.reason)
        synced = reconcile(core)
        publish_board(core)  # the custody board, refreshed with every pass (every minute)
    return {"sweep": report.as_dict(), "reconcile": synced}


@flow(name="custody-reconcile", persist_result=False)
def reconcile_runs() -> dict:
    with core_for_run() as core:
        result = reconcile(core)
    get_run_logger().info("reconciled: %s", result)
    return result
