"""The naive design, the peer of "open cases": one flow run per case that stays
alive (a process) for as long as the case is open, polling the database.

    python -m bench.naive     # serve the deployment `naive-case/naive`, no concurrency limit
"""
from __future__ import annotations

import time

from prefect import flow, serve

POLL_SECONDS = 15.0


@flow(name="naive-case", persist_result=False)
def naive_case(case_id: str, poll_seconds: float = POLL_SECONDS) -> str:
    from custody.wiring import core_for_run

    with core_for_run() as core:
        while True:
            with core.uow(read_only=True) as uow:
                case = uow.cases.get(case_id)
            if case is None or not case.is_open:
                return str(case.status) if case else "no such case"
            time.sleep(poll_seconds)


if __name__ == "__main__":
    serve(naive_case.to_deployment(name="naive"), limit=None, pause_on_shutdown=False)
