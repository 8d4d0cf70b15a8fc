"""The peer: APScheduler 3 with its SQLAlchemyJobStore on the same database as
custody, one date job per release order, each job doing the same unit of work
as the backstop does for one case (advance it under compare-and-set, write the
release order, its audit entry and its outbox rows in one transaction).

    python -m bench.peer_aps load  --db URL --jobs jobs.json
    python -m bench.peer_aps run   --db URL --jobs jobs.json --until ISO --out out.json [--misfire-grace S]
    python -m bench.peer_aps serve --db URL --until ISO --out out.json [--misfire-grace S]

`load` stores the jobs in the job store with the scheduler paused, as a
scheduler that was running leaves them when it stops. `run` adds them to a
running scheduler and runs until the given time. `serve` starts a scheduler on
the jobs already in the store (after an outage) and runs until the given time.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

def _scheduler(db: str, misfire_grace: float | None):
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    defaults = {}
    if misfire_grace is not None:
        defaults["misfire_grace_time"] = None if misfire_grace < 0 else misfire_grace
    return BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=db)}, job_defaults=defaults, timezone=timezone.utc)


def _add_jobs(scheduler, jobs: list[dict]) -> None:
    for job in jobs:
        due = datetime.fromisoformat(job["due"])
        scheduler.add_job("bench.aps_job:order_release", "date", run_date=due, args=[job["case_id"], job["due"]],
                          id=job["case_id"], replace_existing=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.peer_aps")
    parser.add_argument("mode", choices=["load", "run", "serve"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--jobs")
    parser.add_argument("--until")
    parser.add_argument("--out")
    parser.add_argument("--misfire-grace", type=float, default=None,
                        help="seconds; negative: no limit (None: APScheduler's default, 1 s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

    counts = {"executed": 0, "missed": 0, "error": 0}

    def listen(event):
        if event.code == EVENT_JOB_MISSED:
            counts["missed"] += 1
        elif event.code == EVENT_JOB_ERROR:
            counts["error"] += 1
        else:
            counts["executed"] += 1

    scheduler = _scheduler(args.db, args.misfire_grace)
    scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    from bench import aps_job

    aps_job.core()  # the job's database connection, ready before the first job (as in a long-running scheduler)
    jobs = json.loads(Path(args.jobs).read_text()) if args.jobs else []
    if args.mode == "load":
        scheduler.start(paused=True)
        _add_jobs(scheduler, jobs)
        scheduler.shutdown(wait=True)
        return 0
    launched = time.time()
    if args.mode == "run":
        scheduler.start(paused=True)
        _add_jobs(scheduler, jobs)
        scheduler.resume()
    else:
        scheduler.start()
    until = datetime.fromisoformat(args.until).timestamp()
    while time.time() < until:
        time.sleep(0.2)
    scheduler.shutdown(wait=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"launched": launched, "pid": os.getpid(), "counts": counts,
                                              "started": aps_job.started, "finished": aps_job.finished}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
