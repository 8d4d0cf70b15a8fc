"""The officer's report: from Submit in the Prefect UI to the service recorded
in the database, on a busy machine (two `yes > /dev/null` processes beside
`custody up` on two cores, as a shared CI machine is).

Each form is submitted with the request the Prefect UI's Resume dialog sends
(POST /api/flow_runs/ID/resume with the run input), and timed from the moment
Prefect stored it (the input's own `created`), on the same machine's clock, to:

- **custody**: the service in the database (its inbox row's `received_at`),
  written by the reader in `custody up`;
- **the run's own process** (the peer, the path before the reader): the moment
  the run's new process starts (its state becomes Running), which Prefect
  schedules after the resume. The path before the reader recorded the form in
  that process, a few tenths of a second later still: this is its lower bound;
- **shown**: the outcome on the run's page (the log line the reader writes).

Goal: p99 ≤ 1 s for custody."""
from __future__ import annotations

import random
import subprocess
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from bench.common import ROOT, TOKEN, Workspaces, detainer_event, free_port, now, release_event, summary, wait_http
from custody.store import schema as t

POLICY = """\
[jurisdiction]
name = "Benchmark County (WSO mode)"
mode = "wso"
timezone = "America/New_York"
facilities = ["RCJ"]

[hold]
limit = "48h"
service_grace = "1h"
"""
BUSY_LOOPS = 2


def officer_reports(spaces: Workspaces, kind: str, n: int, seed: int = 15) -> dict[str, Any]:
    ws = spaces.new("officer-report", kind)
    ws.policy_path.write_text(POLICY)
    roster = subprocess.run([sys.executable, "-m", "custody", "roster", "load", str(ROOT / "examples" / "roster.csv")],
                            env=ws.env(), cwd=ROOT, capture_output=True, text=True, timeout=120)
    if roster.returncode != 0:
        raise RuntimeError(f"roster load: {roster.stderr}")
    prefect_port = free_port()
    api = f"http://127.0.0.1:{prefect_port}/api"
    proc, port = ws.start_up("custody-up", prefect=True, CUSTODY_PREFECT_PORT=str(prefect_port))
    core = ws.core()
    out: dict[str, Any] = {"kind": kind, "n": n, "busy_loops": BUSY_LOOPS}
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120)
        _wait(lambda: _ready(api), 300, "the served deployments")
        at = now()
        events = [e for i in range(n) for e in (detainer_event("or", i, at - timedelta(hours=2), 500),
                                                 release_event("or", i, at))]
        response = httpx.post(f"http://127.0.0.1:{port}/events", json=events, timeout=120,
                              headers={"Authorization": f"Bearer {TOKEN}"})
        results = response.json()["results"]
        case_ids = [r["case_id"] for r in results[::2]]
        with httpx.Client(base_url=api, timeout=30) as client:
            runs = _wait(lambda: _all_asking(core, client, case_ids), 900, f"{n} runs to ask for the officer's form")
            rng = random.Random(seed)
            loops = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(BUSY_LOOPS)]
            try:
                for case_id in case_ids:
                    out["retried"] = out.get("retried", 0) + _submit(client, runs[case_id], _warrant(core, case_id))
                    time.sleep(rng.uniform(0.5, 2.5))
                _wait(lambda: _all_done(client, runs), 900, "every run to record its form and wait for the pickup")
            finally:
                for loop in loops:
                    loop.kill()
                    loop.wait()
            out.update(_latencies(core, client, runs))
    finally:
        ws.stop(proc)
        core.engine.dispose()
    print(f"   officer's report {kind}: custody p99 {out['custody_ms'].get('p99', 0):.0f} ms, "
          f"the run's own process p99 {out['run_ms'].get('p99', 0):.0f} ms", file=sys.stderr, flush=True)
    return out


def _submit(client: httpx.Client, run_id: str, warrant: str) -> int:
    """Submit the form as the UI does; as an officer would, again while the server
    answers 503 (a SQLite-backed Prefect server does when its database is busy).
    Returns how many tries were refused."""
    form = {"run_input": {"officer_badge": "W-1024", "warrant_number": warrant, "served_inside_facility": True}}
    for tried in range(40):
        answer = client.post(f"/flow_runs/{run_id}/resume", json=form)
        if answer.status_code < 500:
            if answer.json().get("status") != "ACCEPT":
                raise RuntimeError(f"the resume of {run_id} was not accepted: {answer.text[:300]}")
            return tried
        time.sleep(0.5)
    raise RuntimeError(f"the resume of {run_id} was refused 40 times: {answer.text[:300]}")


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {what}")


def _ready(api: str) -> bool:
    try:
        return httpx.get(f"{api}/deployments/name/custody-case/case", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _warrant(core, case_id: str) -> str:
    with core.uow(read_only=True) as uow:
        return uow.cases.get(case_id).detainer.warrant_number


def _all_asking(core, client: httpx.Client, case_ids: list[str]) -> dict[str, str] | None:
    with core.engine.connect() as conn:
        runs = dict(conn.execute(select(t.case_runs.c.case_id, t.case_runs.c.flow_run_id)
                                 .where(t.case_runs.c.case_id.in_(case_ids))).all())
    if len(runs) < len(case_ids) or None in runs.values():
        return None
    for run_id in runs.values():
        state = client.get(f"/flow_runs/{run_id}").json()["state"]
        keyset = state["state_details"].get("run_input_keyset")
        if state["type"] != "PAUSED" or not keyset or client.get(f"/flow_runs/{run_id}/input/{keyset['description']}").status_code != 200:
            return None
    return runs


def _all_done(client: httpx.Client, runs: dict[str, str]) -> bool:
    """Every run has been through its record task since the form and waits again (for the pickup)."""
    for run_id in runs.values():
        state = client.get(f"/flow_runs/{run_id}").json()["state"]
        if state["type"] != "PAUSED" or state["state_details"].get("run_input_keyset"):
            return False
    return True


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _latencies(core, client: httpx.Client, runs: dict[str, str]) -> dict[str, Any]:
    ours, own, shown, held = [], [], [], 0
    with core.engine.connect() as conn:
        received = dict(conn.execute(select(t.inbox.c.case_id, t.inbox.c.received_at)
                                     .where(t.inbox.c.case_id.in_(list(runs)), t.inbox.c.event_id.like("form-%"))).all())
        statuses = dict(conn.execute(select(t.cases.c.case_id, t.cases.c.status).where(t.cases.c.case_id.in_(list(runs)))).all())
    for case_id, run_id in runs.items():
        inputs = client.post(f"/flow_runs/{run_id}/input/filter", json={"prefix": "suspended-waits-for-wso-service-",
                                                                          "limit": 50}).json()
        stored = min(_instant(i["created"]) for i in inputs if i["key"].endswith("-response"))
        if case_id in received:
            ours.append((received[case_id] - stored).total_seconds() * 1000)
        states = client.get("/flow_run_states/", params={"flow_run_id": run_id}).json()
        starts = [_instant(state["timestamp"]) for state in states
                  if state["type"] == "RUNNING" and _instant(state["timestamp"]) > stored]
        if starts:
            own.append((min(starts) - stored).total_seconds() * 1000)
        logs = client.post("/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}}}).json()
        said = [_instant(log["timestamp"]) for log in logs if log["name"] == "custody.officer-report"]
        if said:
            shown.append((min(said) - stored).total_seconds() * 1000)
        held += statuses.get(case_id) == "held"
    return {"custody_ms": summary(ours), "run_ms": summary(own), "shown_ms": summary(shown), "held": held,
            "raw_latencies_ms": {"custody": ours, "run": own, "shown": shown}}
