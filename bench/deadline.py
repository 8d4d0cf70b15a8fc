"""The deadline benchmarks: precision, restart after an outage, two backstops.

"Ours" is `custody up --no-prefect`, started exactly as an operator starts it
(its backstop thread is the product's loop; nothing is patched). The peer is
APScheduler 3 with its SQLAlchemyJobStore on the same kind of database, one
date job per release order doing the same unit of work (bench/aps_job.py).

Lateness of a release order is read from the database afterwards: the case's
`release_ordered_at` and its outbox rows' `created_at`, each minus the case's
`release_order_at` (the instant it was due)."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import httpx
from sqlalchemy import func, select

from bench.common import ROOT, TOKEN, UTC, Workspace, Workspaces, now, raise_priority, summary, wait_http
from bench.population import past_holds, timed_holds
from custody.store import schema as t

# --- reading the outcome ------------------------------------------------------------------------

def outcome(ws: Workspace, core, due: dict[str, datetime], durable: dict[str, datetime] | None = None) -> dict[str, Any]:
    """Lateness (ms) of every release order, and how many times each was given.
    `durable`: when each order's transaction had committed, where known."""
    with core.engine.connect() as conn:
        cases = {r.case_id: r for r in conn.execute(
            select(t.cases.c.case_id, t.cases.c.release_order_at, t.cases.c.release_ordered_at))}
        outbox = dict(conn.execute(select(t.outbox.c.case_id, func.min(t.outbox.c.created_at))
                                   .where(t.outbox.c.kind == "release-order").group_by(t.outbox.c.case_id)).all())
        outbox_rows = dict(conn.execute(select(t.outbox.c.case_id, func.count())
                                        .where(t.outbox.c.kind == "release-order").group_by(t.outbox.c.case_id)).all())
        orders = dict(conn.execute(select(t.audit.c.case_id, func.count())
                                   .where(t.audit.c.action == "release_ordered").group_by(t.audit.c.case_id)).all())
    record, row, missed = [], [], 0
    for case_id, at in due.items():
        case = cases[case_id]
        assert case.release_order_at == at, (case_id, case.release_order_at, at)
        if case.release_ordered_at is None:
            missed += 1
            continue
        record.append((case.release_ordered_at - at).total_seconds() * 1000)
        row.append((outbox[case_id] - at).total_seconds() * 1000)
    counts: dict[int, int] = {}
    for case_id in due:
        counts[orders.get(case_id, 0)] = counts.get(orders.get(case_id, 0), 0) + 1
    committed = [(durable[c] - at).total_seconds() * 1000 for c, at in due.items() if durable and c in durable]
    return {"record_ms": summary(record), "outbox_ms": summary(row), "durable_ms": summary(committed), "missed": missed, "cases": len(due),
            "orders_per_case": {str(k): v for k, v in sorted(counts.items())},
            "outbox_rows_per_case": sorted(set(outbox_rows.get(c, 0) for c in due)),
            "raw_record_ms": record}


def http_sender(port: int) -> tuple[httpx.Client, Callable[[dict], str]]:
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)

    def send(event: dict) -> str:
        response = client.post("/events", json=event)
        body = response.json()
        if response.status_code != 201:
            raise RuntimeError(f"{event['event_id']}: {response.status_code} {body}")
        return body["case_id"]

    return client, send


def wait_until(at: datetime) -> None:
    while now() < at:
        time.sleep(min(0.5, max(0.01, (at - now()).total_seconds())))


def _peer(ws: Workspace, mode: str, *, jobs: dict[str, datetime] | None = None, until: datetime | None = None,
          misfire: float | None = None, out: str | None = None, wait: bool = False) -> subprocess.Popen:
    argv = [sys.executable, "-m", "bench.peer_aps", mode, "--db", ws.database_url]
    if jobs is not None:
        path = ws.home / f"jobs-{mode}.json"
        path.write_text(json.dumps([{"case_id": c, "due": d.isoformat()} for c, d in jobs.items()]))
        argv += ["--jobs", str(path)]
    if until is not None:
        argv += ["--until", until.isoformat()]
    if misfire is not None:
        argv += ["--misfire-grace", str(misfire)]
    if out:
        argv += ["--out", str(ws.home / out)]
    log = open(ws.home / f"peer-{mode}-{out or 'load'}.log", "w")
    proc = subprocess.Popen(argv, env=ws.env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=raise_priority)
    ws.children.append(proc)
    if wait:
        if proc.wait(timeout=900) != 0:
            raise RuntimeError(f"APScheduler peer {mode} failed; see {log.name}")
    return proc


def _peer_finished(ws: Workspace, out: str) -> dict[str, datetime]:
    data = json.loads((ws.home / out).read_text())
    return {case_id: datetime.fromtimestamp(at, UTC) for case_id, at in data.get("finished", [])}


def _peer_starts(ws: Workspace, out: str, due: dict[str, datetime]) -> dict[str, Any]:
    data = json.loads((ws.home / out).read_text())
    late = [(at - due[c].timestamp()) * 1000 for c, at in data["started"]]
    per_job: dict[str, int] = {}
    for case_id, _ in data["started"]:
        per_job[case_id] = per_job.get(case_id, 0) + 1
    return {"job_start_ms": summary(late), "counts": data["counts"], "launched": data["launched"], "per_job": per_job,
            "started": data["started"]}


# --- 1. precision ------------------------------------------------------------------------------

def precision(spaces: Workspaces, kind: str, n: int, window: float, seed: int = 7) -> dict[str, Any]:
    """n release orders at random instants within `window` seconds (the same
    instants, relative to the window's start, for both systems)."""
    rng = random.Random(seed)
    offsets = sorted(rng.uniform(0, window) for _ in range(n))
    margin = 12 + n * 0.01
    result: dict[str, Any] = {"n": n, "window_s": window, "kind": kind}

    ws = spaces.new("precision-ours", kind)
    ws.core().engine.dispose()  # migrate before the process starts
    proc, port = ws.start_up("custody-up")
    wait_http(f"http://127.0.0.1:{port}/health")
    client, send = http_sender(port)
    core = ws.core()
    try:  # written through the running system's own endpoint, as the jail's systems would
        start, due = timed_holds(core, "p", 1, offsets, margin=4, send=send)
    finally:
        client.close()
    wait_until(start + timedelta(seconds=window + 3))
    ws.stop(proc)
    result["ours"] = outcome(ws, core, due, _logged_orders(ws.home / "custody-up.log"))
    core.engine.dispose()

    ws = spaces.new("precision-apscheduler", kind)
    core = ws.core()
    start, due = timed_holds(core, "p", 1, offsets, margin=margin)
    _peer(ws, "run", jobs=due, until=start + timedelta(seconds=window + 3), out="aps.json", wait=True)
    result["apscheduler"] = outcome(ws, core, due, _peer_finished(ws, "aps.json")) | _peer_starts(ws, "aps.json", due)
    result["apscheduler"].pop("per_job")
    result["apscheduler"].pop("started")
    core.engine.dispose()
    return result


# --- 2. restart after an outage ------------------------------------------------------------------

def restart(spaces: Workspaces, kind: str, n: int = 100, outage: float = 600) -> dict[str, Any]:
    """Both systems down for `outage` seconds across n due times, then started.

    Nobody waits ten minutes: the due times are placed in the past, spread over
    the `outage` seconds before the start, and the cases (or jobs) are written
    as they would have been before the outage (with the clock set before the
    first due time). At start-up, that is exactly what a ten-minute outage
    leaves in the database."""
    result: dict[str, Any] = {"n": n, "outage_s": outage, "kind": kind}

    def due_times() -> list[datetime]:
        start = now()
        return [start - timedelta(seconds=outage) + timedelta(seconds=outage * i / n) for i in range(n)]

    ws = spaces.new("restart-ours", kind)
    core = ws.core()
    due = past_holds(core, "r", 2, due_times())
    launched = now()
    proc, port = ws.start_up("custody-up")
    wait_http(f"http://127.0.0.1:{port}/health")
    time.sleep(5)
    ws.stop(proc)
    ours = outcome(ws, core, due)
    ours["after_start_ms"] = _after_start(core, due, launched)
    result["ours"] = ours
    core.engine.dispose()

    for label, misfire in (("apscheduler_default", None), ("apscheduler_no_misfire_limit", -1.0)):
        ws = spaces.new(f"restart-{label}".replace("_", "-"), kind)
        core = ws.core()
        due = past_holds(core, "r", 2, due_times())
        _peer(ws, "load", jobs=due, misfire=misfire, wait=True)  # a job keeps the settings it was added with
        launched = now()
        _peer(ws, "serve", until=now() + timedelta(seconds=10), misfire=misfire, out="aps.json", wait=True)
        peer = outcome(ws, core, due) | _peer_starts(ws, "aps.json", due)
        peer.pop("launched")  # (after its imports; the start is counted from launching the process, as for ours)
        peer["after_start_ms"] = _after_start(core, due, launched)
        peer.pop("per_job")
        peer.pop("started")
        result[label] = peer
        core.engine.dispose()
    return result


def _after_start(core, due: dict[str, datetime], launched: datetime) -> dict[str, Any]:
    with core.engine.connect() as conn:
        ordered = [r[0] for r in conn.execute(select(t.cases.c.release_ordered_at)
                                              .where(t.cases.c.case_id.in_(list(due)), t.cases.c.release_ordered_at.is_not(None)))]
    values = [(at - launched).total_seconds() * 1000 for at in ordered]
    return summary(values) | {"within_1s": sum(v <= 1000 for v in values)}


# --- 3. two backstops at once ---------------------------------------------------------------------

def two_backstops(spaces: Workspaces, kind: str, n: int, window: float, seed: int = 11) -> dict[str, Any]:
    rng = random.Random(seed)
    offsets = sorted(rng.uniform(0, window) for _ in range(n))
    result: dict[str, Any] = {"n": n, "window_s": window, "kind": kind}

    ws = spaces.new("two-backstops-ours", kind)
    core = ws.core()
    start, due = timed_holds(core, "b", 3, offsets, margin=12)
    procs = [ws.start_up(f"custody-up-{i}")[0] for i in range(2)]
    wait_until(start + timedelta(seconds=window + 3))
    for proc in procs:
        ws.stop(proc)
    logged = {**_logged_orders(ws.home / "custody-up-0.log"), **_logged_orders(ws.home / "custody-up-1.log")}
    ours = outcome(ws, core, due, logged)
    ours["orders_by_process"] = [_orders_in_log(ws.home / f"custody-up-{i}.log") for i in range(2)]
    result["ours"] = ours
    core.engine.dispose()

    # The peer cannot share a job store: two schedulers on one store each run the jobs.
    ws = spaces.new("two-backstops-apscheduler", kind)
    core = ws.core()
    start, due = timed_holds(core, "b", 3, offsets, margin=12 + n * 0.01)
    _peer(ws, "load", jobs=due, wait=True)
    peers = [_peer(ws, "serve", until=start + timedelta(seconds=window + 3), out=f"aps-{i}.json") for i in range(2)]
    for proc in peers:
        proc.wait(timeout=window + 600)
    peer = outcome(ws, core, due, {**_peer_finished(ws, "aps-0.json"), **_peer_finished(ws, "aps-1.json")})
    runs: dict[str, int] = {}
    per_process = []
    for i in range(2):
        started = _peer_starts(ws, f"aps-{i}.json", due)
        per_process.append(sum(started["per_job"].values()))
        for case_id, count in started["per_job"].items():
            runs[case_id] = runs.get(case_id, 0) + count
    peer["job_runs_by_process"] = per_process
    peer["jobs_run_twice"] = sum(1 for c in due if runs.get(c, 0) > 1)
    result["apscheduler_two_schedulers"] = peer
    core.engine.dispose()
    return result


def _orders_in_log(path: Path) -> int:
    return len(_logged_orders(path))


def _logged_orders(path: Path) -> dict[str, datetime]:
    """When the backstop logged each release order: just after its transaction
    committed (the log's clock has millisecond resolution, in local time)."""
    found = {}
    for line in path.read_text().splitlines():
        if "release_ordered: held -> release_ordered" in line and " backstop " in line:
            stamp, rest = line[:23], line.split(" backstop ", 1)[1]
            found[rest.split()[0]] = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").astimezone()
    return found
