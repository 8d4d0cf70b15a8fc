"""Several machines: the same deployments on a Prefect `process` work pool.

    PREFECT_API_URL=http://prefect-host:4200/api \\
    CUSTODY_DATABASE_URL=postgresql://custody@db-host/custody \\
        python -m deployments.workpool            # once, to register
    prefect worker start --pool custody --type process   # on each machine, as many as wanted

Each worker runs flow runs as subprocesses from this checkout (the same path on
every machine). The case, hold-step and alert deployments have no schedule; the
backstop and reconciler run every minute. Whichever worker runs a step, every
legal transition is a compare-and-set in the database, so two workers never
order one release twice; two workers reaching for one run are told apart by
the server, which lets one of them start it (tests/integration/test_workpool.py).
The Prefect server itself moves to PostgreSQL with CUSTODY_PREFECT_DATABASE_URL
(under `custody up`) or PREFECT_SERVER_DATABASE_CONNECTION_URL=postgresql+asyncpg://...
"""
from __future__ import annotations

import argparse
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists

from deployments.serve import deployments

ROOT = Path(__file__).resolve().parents[1]


def ensure_pool(name: str, concurrency: int | None) -> None:
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=name, type="process", concurrency_limit=concurrency))
        except ObjectAlreadyExists:
            pass


def register(pool: str) -> dict[str, str]:
    """Register every deployment of `deployments.serve` on the work pool, with
    the same names, schedules and descriptions (one list, two forms). Workers
    run the flows from this checkout (`working_dir`), found by entrypoint."""
    ids = {}
    for deployment in deployments():
        deployment.job_variables = {"working_dir": str(ROOT)}
        ids[deployment.name] = str(deployment.apply(work_pool_name=pool))
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", default="custody")
    parser.add_argument("--concurrency", type=int, default=None, help="most runs at once across all workers")
    args = parser.parse_args()
    ensure_pool(args.pool, args.concurrency)
    ids = register(args.pool)
    from uuid import UUID

    from deployments.automations import ensure_automations
    ensure_automations(UUID(ids["alert"]))
    print(f"registered {len(ids)} deployments on work pool {args.pool!r}; start workers with: prefect worker start --pool {args.pool}")


if __name__ == "__main__":
    main()
