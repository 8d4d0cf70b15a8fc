"""Open cases: the whole system (`custody up` with its Prefect server and serve
process) holding 1,000 and 10,000 cases that wait for the person's release,
each with its Prefect run suspended; beside it the naive design (a live flow
run per case that polls), measured at a few dozen runs and extrapolated.
What is real and what is constructed: see WHAT_IS_REAL."""
from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from bench.common import (
    ROOT,
    TOKEN,
    PartialResult,
    Workspace,
    Workspaces,
    descendants,
    detainer_event,
    free_port,
    measured,
    now,
    percentile,
    raise_priority,
    rss_bytes,
    summary,
    tree_rss,
    wait_http,
)
from custody.store import schema as t

WHAT_IS_REAL = """\
What is real and what is constructed:

- **Real**: a first set of cases goes the whole product path. Detainers are posted to POST /events; the bridge
  creates each case's run (`create_case_run`); the served deployment starts it; the flow reads the case, publishes
  its timeline, marks itself in step and suspends. The acceptance-to-run latency, the CPU each run costs, and the
  bytes per case in the Prefect database come from these.
- **Constructed**: the rest of the 1,000 / 10,000. Their cases are real (posted to POST /events in batches,
  durable), but their Prefect runs are created through the Prefect API directly in the state the flow leaves them
  in (Suspended, with the pause key the flow's first wait takes, `waits-for-release-<first 16 hex digits of the
  case's mirror digest>-0`; same deployment, name, tags, parameters and idempotency key as `create_case_run`
  uses), and the case_runs row records the run as in step with that digest (and the case's mirror_pending is
  cleared), as the flow's mark-synced step would.
  The digest is computed before the case is posted and checked against the stored cases afterwards.
  Starting 10,000 real runs would cost hours of CPU on this machine (the real cost per run is reported). A
  constructed run lacks the real run's task runs, logs, timeline artifact and earlier states (Scheduled, Pending,
  Running), so the Prefect database of the large populations is smaller than a real one would be: use the real
  runs' bytes per case for sizing."""

REAL_PACE_S = 0.5  # a detainer every half second through the real path (jails receive far fewer)
# The benchmark's own reads of the Prefect API (waiting for runs, not the figures): on a loaded 2-core machine a
# SQLite-backed server busy starting dozens of runs can take minutes to answer. Prefect's client retries a
# timed-out request 5 times; a read that still fails is counted (reported) and the wait goes on to its deadline.
API_READ_TIMEOUT_S = 120.0
POLL_S = 2.0  # how often a wait for runs reads the API: each read is work for the server being measured


def open_cases(spaces: Workspaces, sizes: tuple[int, ...], real: int, naive: int, work: Path) -> dict[str, Any]:
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect-client"))
    out: dict[str, Any] = {"ours": ours(spaces, sizes, real)}
    try:
        out["naive"] = naive_peer(spaces, naive, sizes)
    except Exception as exc:  # keep our figures (a long run) and say the peer failed
        out["naive"] = {"runs": naive, "error": f"{type(exc).__name__}: {exc}"[:500]}
        raise PartialResult("the naive peer failed", out) from exc
    return out


def _api_settings(api: str):
    from prefect.settings import PREFECT_API_REQUEST_TIMEOUT, PREFECT_API_URL, temporary_settings
    return temporary_settings(updates={PREFECT_API_URL: api, PREFECT_API_REQUEST_TIMEOUT: API_READ_TIMEOUT_S})


# --- ours --------------------------------------------------------------------------------------

def ours(spaces: Workspaces, sizes: tuple[int, ...], real: int) -> dict[str, Any]:
    ws = spaces.new("open-ours", "sqlite")
    prefect_port = free_port()
    api = f"http://127.0.0.1:{prefect_port}/api"
    launched = time.monotonic()
    proc, port = ws.start_up("custody-up", prefect=True, CUSTODY_PREFECT_PORT=str(prefect_port))
    out: dict[str, Any] = {"real_cases": real, "rows": [], "api_read_failures": []}
    with _api_settings(api):
        wait_http(f"http://127.0.0.1:{port}/health")
        _wait(lambda: _deployment_ready(), 300, "the served deployments", ws, out["api_read_failures"])
        out["ready_s"] = time.monotonic() - launched
        time.sleep(10)  # let start-up settle before the baseline
        core = ws.core()
        out["baseline"] = _measure(ws, proc, core, api)

        # 1. the real path
        cpu_before = _tree_cpu(proc.pid)
        started = time.monotonic()
        posted = _post_paced(port, real, series=400)
        case_ids = list(posted)
        _wait(lambda: _all_suspended(core, case_ids), 1800, f"{real} real case runs to suspend", ws, out["api_read_failures"],
              every=POLL_S)
        out["real_s"] = time.monotonic() - started
        out["real_cpu_s_per_case"] = (_tree_cpu(proc.pid) - cpu_before) / real
        out["acceptance_to_run"] = _acceptance_to_run(core, case_ids)
        time.sleep(5)
        after_real = _measure(ws, proc, core, api)
        out["after_real"] = after_real
        out["bytes_per_case_real"] = {
            "custody": (after_real["custody_db_bytes"] - out["baseline"]["custody_db_bytes"]) / real,
            "prefect": (after_real["prefect_db_bytes"] - out["baseline"]["prefect_db_bytes"]) / real}
        print(f"   open cases: {real} real runs suspended in {out['real_s']:.0f} s "
              f"({out['real_cpu_s_per_case']:.2f} CPU-s each)", file=sys.stderr, flush=True)

        # 2. constructed, up to each size
        series = 410
        for size in sizes:
            have = _open(core)
            add = size - have
            row: dict[str, Any] = {"open": size, "constructed": add}
            if add > 0:
                row.update(_construct(core, port, add, series))
                series += 1
            time.sleep(5)
            row.update(_measure(ws, proc, core, api, idle_cpu_s=60))
            out["rows"].append(row)
            print(f"   open cases: {size} open, memory {row['rss_bytes'] / 2**20:.0f} MiB in {row['processes']} processes, "
                  f"UI list p50 {row['ui_list_ms']['paginate']['p50']:.0f} ms", file=sys.stderr, flush=True)
        core.engine.dispose()
    ws.stop(proc, timeout=120)
    return out


def _deployment_ready() -> bool:
    from prefect.client.orchestration import get_client
    try:
        with get_client(sync_client=True) as client:
            client.read_deployment_by_name("custody-case/case")
        return True
    except Exception:
        return False


def _wait(predicate, timeout: float, what: str, ws: Workspace, failures: list[str] | None = None, every: float = 1.0) -> None:
    """Until `predicate()` holds. A read of the API that fails (timed out, even
    after the client's own retries; a 5xx) is not an answer: it is recorded in
    `failures` (reported beside the figures) and the wait goes on to its deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            if predicate():
                return
        except (httpx.TransportError, _server_error()) as exc:
            if isinstance(exc, _server_error()) and exc.response.status_code < 500:
                raise  # a request the server refused is a bug here, not a busy server
            last = f"{type(exc).__name__} after {time.monotonic() - started:.0f} s while waiting for {what}"
            if failures is not None:
                failures.append(last)
            print(f"   (the Prefect API did not answer: {last}; still waiting)", file=sys.stderr, flush=True)
        time.sleep(every)
    raise RuntimeError(f"timed out waiting for {what}; see {ws.home}" + (f" (last API read failed: {last})" if last else ""))


def _server_error() -> type[Exception]:
    from prefect.exceptions import PrefectHTTPStatusError
    return PrefectHTTPStatusError


def _post_paced(port: int, count: int, series: int) -> dict[str, float]:
    """Detainers one at a time through POST /events; case id -> when posted."""
    posted = {}
    at = now() - timedelta(hours=1)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as client:
        for n in range(count):
            started = time.monotonic()
            response = client.post("/events", json=detainer_event(f"o{series}", n, at, series))
            if response.status_code != 201:
                raise RuntimeError(f"detainer refused: {response.status_code} {response.text[:300]}")
            posted[response.json()["case_id"]] = time.time()
            time.sleep(max(0.0, REAL_PACE_S - (time.monotonic() - started)))
    return posted


def _all_suspended(core, case_ids: list[str]) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with core.engine.connect() as conn:
        runs = dict(conn.execute(select(t.case_runs.c.case_id, t.case_runs.c.flow_run_id)
                                 .where(t.case_runs.c.case_id.in_(case_ids))).all())
    if len(runs) < len(case_ids) or any(v is None for v in runs.values()):
        return False
    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(runs.values()))), limit=len(runs))
    return len(found) == len(runs) and all(r.state and r.state.name == "Suspended" for r in found)


def _acceptance_to_run(core, case_ids: list[str]) -> dict[str, Any]:
    """From the detainer's acceptance (its inbox row) to its case run existing in
    Prefect (the run's `created`), and to the run suspended and waiting."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with core.engine.connect() as conn:
        accepted = dict(conn.execute(select(t.inbox.c.case_id, t.inbox.c.received_at).where(t.inbox.c.case_id.in_(case_ids))).all())
        runs = dict(conn.execute(select(t.case_runs.c.flow_run_id, t.case_runs.c.case_id)
                                 .where(t.case_runs.c.case_id.in_(case_ids))).all())
    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(runs))), limit=len(runs))
    to_run = [(r.created - accepted[runs[str(r.id)]]).total_seconds() * 1000 for r in found]
    to_wait = [(r.state.timestamp - accepted[runs[str(r.id)]]).total_seconds() * 1000 for r in found]
    return {"to_run_exists_ms": summary(to_run), "to_suspended_ms": summary(to_wait)}


def _open(core) -> int:
    from custody.store.repositories.cases import OPEN
    with core.engine.connect() as conn:
        return conn.execute(select(func.count()).where(t.cases.c.status.in_(OPEN))).scalar_one()


def _construct(core, port: int, count: int, series: int) -> dict[str, Any]:
    """`count` more open cases: real cases through POST /events (batches),
    with runs constructed in Prefect as the flow leaves them (see the module's
    docstring), recorded in step before the cases arrive so the bridge has
    nothing to do for them."""
    from custody.adapters.prefect.runs import CASE_DEPLOYMENT, case_tag

    at = now() - timedelta(hours=1)
    year = core.policy.local(at - timedelta(minutes=30)).year
    with core.engine.connect() as conn:
        counter = conn.execute(select(t.counters.c.value).where(t.counters.c.name == f"case-{year}")).scalar_one_or_none() or 0
    version = 2  # a case opened by a detainer has been written twice (inserted, then saved with its effects); checked below
    case_ids = [f"{year}-{counter + n:05d}" for n in range(1, count + 1)]
    events = [detainer_event(f"o{series}", n, at - timedelta(minutes=30), series) for n in range(count)]
    digests, keys = zip(*(first_wait(case_id, event, core.policy) for case_id, event in zip(case_ids, events)))

    started = time.monotonic()
    run_ids, retries = asyncio.run(_create_suspended_runs(CASE_DEPLOYMENT, case_tag, case_ids, keys))
    prefect_s = time.monotonic() - started
    with core.engine.begin() as conn:
        conn.execute(insert(t.case_runs), [{"case_id": c, "flow_run_id": r, "created_at": now(), "synced_version": version,
                                            "mirror_digest": d} for c, r, d in zip(case_ids, run_ids, digests)])

    started = time.monotonic()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=600) as client:
        got = []
        for first in range(0, count, 500):
            response = client.post("/events", json=events[first:first + 500])
            results = response.json()["results"]
            if response.status_code != 200 or any(r["result"] != "accepted" for r in results):
                raise RuntimeError(f"batch refused: {response.status_code} {results[:1]}")
            got += [r["case_id"] for r in results]
    intake_s = time.monotonic() - started
    if got != case_ids:
        raise RuntimeError("case ids were not the ones the constructed runs were made for (was something else writing?)")
    with core.engine.connect() as conn:
        lagging = conn.execute(select(func.count()).select_from(t.cases.join(t.case_runs, t.case_runs.c.case_id == t.cases.c.case_id))
                               .where(t.case_runs.c.synced_version != t.cases.c.version, t.cases.c.case_id.in_(case_ids))).scalar_one()
    if lagging:
        raise RuntimeError(f"{lagging} constructed runs are not in step with their cases")
    with core.uow() as uow:  # in step: cleared by the store's own rule, as the run's mark-synced step clears it
        for first in range(0, count, 1000):
            uow.runs.caught_up(*case_ids[first:first + 1000])
        uow.commit()
    _check_digests(core, case_ids, digests)
    return {"prefect_construct_s": prefect_s, "prefect_construct_retries": retries, "custody_intake_s": intake_s}


def first_wait(case_id: str, raw_event: dict[str, Any], policy, at: datetime | None = None) -> tuple[str, str]:
    """(mirror digest, pause key) of the first wait the case flow takes
    (flows/case.py) in the case this detainer opens as `case_id`: the case as
    the intake opens it (custody/service/detainers.py), before it is posted."""
    from custody.adapters.prefect.mirror import mirror_digest
    from flows.case import WAIT_KEY
    from models.case import Case
    from models.domain import Detainer
    from models.events import parse_event

    at = at or now()
    event = parse_event(raw_event, at)
    d = event.detainer
    detainer = Detainer(
        a_number=d.a_number, ice_event_number=d.ice_event_number, form=d.form, requests_custody=d.requests_custody,
        issuing_office=d.issuing_office, issued_at=d.issued_at, received_at=event.occurred_at,
        warrant_form=event.warrant.form if event.warrant else None, warrant_number=event.warrant.number if event.warrant else None,
        identity_verified=event.subject.identity_verified, subject_name=event.subject.name, subject_dob=event.subject.dob,
        event_id=event.event_id)
    case = Case.open(case_id, event.booking_number, event.facility or policy.single_facility, detainer, policy)
    case.advance(at, policy)
    digest = mirror_digest(case, policy)
    return digest, f"{WAIT_KEY.get(str(case.status), 'waits')}-{digest[:16]}-0"


def _check_digests(core, case_ids: list[str], digests: tuple[str, ...], sample: int = 200) -> None:
    """The digests the constructed runs were made with are those of the stored
    cases (a sample, evenly spread: the digest is a pure function of the case)."""
    from custody.adapters.prefect.mirror import mirror_digest

    step = max(1, len(case_ids) // sample)
    with core.uow(read_only=True) as uow:
        for n in list(range(0, len(case_ids), step)) + [len(case_ids) - 1]:
            stored = mirror_digest(uow.cases.get(case_ids[n]), core.policy)
            if stored != digests[n]:
                raise RuntimeError(f"case {case_ids[n]}: its mirror digest {stored[:16]} is not the {digests[n][:16]} its "
                                   "constructed run waits with (has the case as the intake opens it changed? see first_wait)")


async def _create_suspended_runs(deployment_name: str, case_tag, case_ids: list[str], pause_keys: list[str],
                                 concurrency: int = 4) -> tuple[list[str], dict[str, Any]]:
    """The runs, and the retries they took: a busy SQLite-backed server answers
    503 or not in time. The client's own retries are turned off here so that
    every retry is this loop's, counted with the time it spent backing off
    (the idempotency key makes retrying safe)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings
    from prefect.states import Suspended

    retries: dict[str, Any] = {"retries": 0, "backoff_s": 0.0, "errors": {}}
    with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0}):
        async with get_client() as client:
            deployment = await client.read_deployment_by_name(deployment_name)
            gate = asyncio.Semaphore(concurrency)

            async def one(case_id: str, key: str) -> str:
                async with gate:
                    for attempt in range(20):
                        try:
                            run = await client.create_flow_run_from_deployment(
                                deployment.id, parameters={"case_id": case_id}, name=f"case-{case_id}",
                                tags=[case_tag(case_id), "facility-RCJ"], idempotency_key=f"custody-case-{case_id}",
                                state=Suspended(timeout_seconds=None, pause_key=key))
                            return str(run.id)
                        except Exception as exc:
                            if attempt == 19:
                                raise
                            name = type(exc).__name__
                            if isinstance(exc, _server_error()):
                                name += f" {exc.response.status_code}"
                            retries["retries"] += 1
                            retries["errors"][name] = retries["errors"].get(name, 0) + 1
                            pause = min(1 + attempt, 10)
                            retries["backoff_s"] += pause
                            await asyncio.sleep(pause)
            return list(await asyncio.gather(*(one(c, k) for c, k in zip(case_ids, pause_keys)))), retries


# --- what is measured at each size ---------------------------------------------------------------------

STEADY_WAIT_S = 120.0  # the interval deployments start a run every minute; each lasts seconds, so a gap comes within two


def wait_for_long_lived(flow_runs, timeout: float = STEADY_WAIT_S, every: float = 0.5,
                        clock=time.monotonic, sleep=time.sleep) -> dict[str, Any]:
    """Until no flow-run process is alive (`flow_runs()`: their ids), so that
    memory and processes are read from the long-lived ones only (custody up,
    its Prefect server and serve process) and not from a run that happens to
    be starting or exiting at that instant; at most `timeout` seconds, then
    the reading is taken anyway (the runs alive are counted apart)."""
    started = clock()
    seen: set[int] = set()
    while True:
        alive = flow_runs()
        seen.update(alive)
        waited = clock() - started
        if not alive or waited >= timeout:
            return {"waited_s": waited, "flow_runs_seen": len(seen), "flow_runs_left": len(alive)}
        sleep(every)


def _flow_run_pids(pid: int) -> list[int]:
    return [p for p in descendants(pid) if b"prefect.engine" in _cmdline(p) and not _exited(p)]


def _exited(pid: int) -> bool:
    """A zombie: exited, not yet reaped by the serve process (no memory left)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def _measure(ws: Workspace, proc: subprocess.Popen, core, api: str, idle_cpu_s: float = 0) -> dict[str, Any]:
    steady_wait = wait_for_long_lived(lambda: _flow_run_pids(proc.pid))
    rss, processes = tree_rss(proc.pid)
    runs = _flow_run_pids(proc.pid)
    run_rss = sum(rss_bytes(p) for p in runs)
    found: dict[str, Any] = {"rss_bytes": rss, "processes": processes, "rss_steady_bytes": rss - run_rss,
                             "flow_run_processes": len(runs), "steady_wait": steady_wait,
                             "custody_db_bytes": _dbstat_bytes(ws.database_url.removeprefix("sqlite:///")),
                             "prefect_db_bytes": _dbstat_bytes(str(ws.home / "prefect" / "prefect.db")),
                             "ui_list_ms": _ui_list(api), "reconcile_query_ms": _reconcile_query(core)}
    if idle_cpu_s:
        before = _tree_cpu(proc.pid)
        time.sleep(idle_cpu_s)
        found["idle_cpu_percent"] = (_tree_cpu(proc.pid) - before) / idle_cpu_s * 100
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _dbstat_bytes(path: str) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute("SELECT sum(pgsize) FROM dbstat").fetchone()[0] or 0)


UI_QUERIES = {
    "paginate": ("/flow_runs/paginate", {"page": 1, "limit": 10, "sort": "START_TIME_DESC"}),
    "paginate suspended": ("/flow_runs/paginate", {"page": 1, "limit": 10, "sort": "START_TIME_DESC",
                                                   "flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}}),
    "count": ("/flow_runs/count", {}),
}


def _ui_list(api: str, repeats: int = 20) -> dict[str, Any]:
    """What the UI's Runs page asks for: the first page of runs, newest first
    (and the same filtered to suspended runs; and the count). A request not
    answered within API_READ_TIMEOUT_S, or answered 503 (busy), is counted as
    `failed` beside the times of the answered ones, and asked again."""
    found = {}
    with measured(), httpx.Client(base_url=api, timeout=API_READ_TIMEOUT_S) as client:
        for label, (path, body) in UI_QUERIES.items():
            times: list[float] = []
            failed = 0
            warm = False
            while len(times) < repeats and failed <= repeats:
                started = time.perf_counter()
                try:
                    response = client.post(path, json=body)
                except httpx.TimeoutException:
                    failed += 1
                    continue
                if response.status_code == 503:
                    failed += 1
                    continue
                response.raise_for_status()
                if warm:
                    times.append((time.perf_counter() - started) * 1000)
                warm = True
            if len(times) < repeats:
                raise RuntimeError(f"the Prefect API answered {len(times)} of {repeats + failed} requests for {label!r}")
            found[label] = {"p50": percentile(times, 50), "p95": percentile(times, 95), "failed": failed}
    return found


def _reconcile_query(core, repeats: int = 10) -> float:
    """The bridge's catch-up read (every 30 s): which cases lag their run."""
    times = []
    for _ in range(repeats):
        with core.uow(read_only=True) as uow:
            started = time.perf_counter()
            uow.runs.out_of_sync()
            times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 50)


def _tree_cpu(pid: int) -> float:
    """CPU seconds used by a process, its live descendants and the children it reaped."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for p in descendants(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])
        except (OSError, ValueError, IndexError):
            pass
    return total / tick


# --- the naive peer -------------------------------------------------------------------------------

def naive_peer(spaces: Workspaces, n: int, sizes: tuple[int, ...]) -> dict[str, Any]:
    """A Prefect server, a serve process without a concurrency limit, and n
    flow runs that each stay alive polling their case every 15 s (bench/naive.py).

    Treated as ours is: its server and serve process run at the measured
    processes' priority (ours inherit it from `custody up`), and its cases
    arrive at the pace of our real path (REAL_PACE_S), not all in one burst."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
    from prefect.states import Cancelled

    from bench.naive import POLL_SECONDS
    from bench.population import waiting_cases

    ws = spaces.new("open-naive", "sqlite")
    core = ws.core()
    case_ids = waiting_cases(core, "nv", 500, n)
    prefect_port = free_port()
    api = f"http://127.0.0.1:{prefect_port}/api"
    database, database_env = prefect_server_database(spaces.pg.fresh_database(NAIVE_PREFECT_DATABASE) if spaces.pg else None)
    env = ws.env(PREFECT_HOME=str(ws.home / "prefect"), PREFECT_API_URL=api, PREFECT_SERVER_ANALYTICS_ENABLED="false",
                 PREFECT_RUNNER_POLL_FREQUENCY="3", **database_env)
    if database == "sqlite" and 2 * n >= SQLITE_REQUEST_LIMIT - 10:
        print(f"   (naive: {n} live runs on a SQLite-backed Prefect server: each holds 2 websockets, and on SQLite the server "
              f"admits {SQLITE_REQUEST_LIMIT} requests at once, a websocket counting as one while open: expect it to stop "
              "answering; a PostgreSQL cluster avoids this)", file=sys.stderr, flush=True)
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
                              env=env, cwd=ROOT, stdout=open(ws.home / "prefect-server.log", "w"), stderr=subprocess.STDOUT,
                              start_new_session=True, preexec_fn=raise_priority)
    ws.children.append(server)
    out: dict[str, Any] = {"runs": n, "poll_s": POLL_SECONDS, "pace_s": REAL_PACE_S, "prefect_database": database,
                           "api_read_failures": []}
    failures = out["api_read_failures"]
    postgres = spaces.pg.postmaster_pid() if database == "postgresql" else None

    def cpu() -> float:  # the peer's whole system: its server, its serve process and runs, and its database server
        return _tree_cpu(served.pid) + _tree_cpu(server.pid) + (_tree_cpu(postgres) if postgres else 0.0)
    try:
        wait_http(f"{api}/health", timeout=180, token=None)
        served = subprocess.Popen([sys.executable, "-m", "bench.naive"], env=env, cwd=ROOT,
                                  stdout=open(ws.home / "naive-serve.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
                                  preexec_fn=raise_priority)
        ws.children.append(served)
        with _api_settings(api), get_client(sync_client=True) as client:
            found: dict[str, Any] = {}

            def ready() -> bool:
                try:
                    found["deployment"] = client.read_deployment_by_name("naive-case/naive")
                    return True
                except Exception:
                    return False
            _wait(ready, 180, "the naive deployment", ws, failures)
            deployment = found["deployment"]
            time.sleep(10)
            base = tree_rss(server.pid)[0] + tree_rss(served.pid)[0]
            out["baseline_rss_bytes"] = base
            if postgres:
                out["postgres_baseline_rss_bytes"] = tree_rss(postgres)[0]
            before = cpu()
            time.sleep(30)
            base_cpu = (cpu() - before) / 30 * 100
            out["baseline_idle_cpu_percent"] = base_cpu
            cpu_before = _tree_cpu(served.pid)
            started = time.monotonic()
            for case_id in case_ids:  # as ours' real path receives its detainers
                posted = time.monotonic()
                _retrying(lambda: client.create_flow_run_from_deployment(
                    deployment.id, parameters={"case_id": case_id}, name=f"naive-{case_id}",
                    idempotency_key=f"naive-{case_id}"), f"creating the naive run of {case_id}", failures)
                time.sleep(max(0.0, REAL_PACE_S - (time.monotonic() - posted)))
            by_deployment = FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]))

            def all_running() -> bool:
                runs = client.read_flow_runs(flow_run_filter=by_deployment, limit=n + 10)
                return len(runs) == n and all(r.state and r.state.name == "Running" for r in runs)
            _wait(all_running, 1800, f"{n} naive runs to be running", ws, failures, every=POLL_S)
            out["start_s"] = time.monotonic() - started
            out["start_cpu_s_per_run"] = (_tree_cpu(served.pid) - cpu_before) / n
            time.sleep(20)
            rss, processes = tree_rss(served.pid)
            rss += tree_rss(server.pid)[0]
            out.update(rss_bytes=rss, processes=processes + 1, rss_per_run=(rss - base) / n)
            if postgres:
                out["postgres_rss_bytes"], out["postgres_processes"] = tree_rss(postgres)
            before = cpu()
            time.sleep(60)
            out["idle_cpu_percent"] = (cpu() - before) / 60 * 100
            out["ui_list_ms"] = _ui_list(api)
            per_run_cpu = max(0.0, out["idle_cpu_percent"] - base_cpu) / n
            out["extrapolated"] = [{"open": size, "rss_bytes": base + out["rss_per_run"] * size, "processes": size + 2,
                                    "start_cpu_s": out["start_cpu_s_per_run"] * size,
                                    "idle_cpu_percent": base_cpu + per_run_cpu * size} for size in sizes]
            print(f"   naive (Prefect on {database}): {n} live runs: {out['rss_per_run'] / 2**20:.0f} MiB and "
                  f"{out['start_cpu_s_per_run']:.1f} CPU-s each"
                  + (f"; {len(failures)} API reads failed" if failures else ""), file=sys.stderr, flush=True)
            for run in _retrying(lambda: client.read_flow_runs(flow_run_filter=by_deployment, limit=n + 10), "the naive runs", failures):
                _retrying(lambda: client.set_flow_run_state(run.id, Cancelled(), force=True), "cancelling a naive run", failures)
            time.sleep(5)
    finally:
        ws.stop_all()
        core.engine.dispose()
    return out


NAIVE_PREFECT_DATABASE = "open_naive_prefect"
SQLITE_REQUEST_LIMIT = 100  # prefect/server/api/server.py: RequestLimitMiddleware(limit=100) when the database is SQLite


def prefect_server_database(url: str | None) -> tuple[str, dict[str, str]]:
    """Which database the naive peer's Prefect server keeps its runs in, and
    the environment that tells the server so. With the run's PostgreSQL
    cluster (`url`, a fresh database's SQLAlchemy URL): PostgreSQL through
    asyncpg, the setup Prefect recommends beyond light load, so the peer is
    not judged by SQLite's limits (a SQLite-backed server stopped answering
    with 50 live runs). Without one: Prefect's default, SQLite under
    PREFECT_HOME."""
    if url is None:
        return "sqlite", {}
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"prefect_server_database: url must be a PostgreSQL URL, not {parsed.get_backend_name()!r}")
    asyncpg = parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    return "postgresql", {"PREFECT_SERVER_DATABASE_CONNECTION_URL": asyncpg}


def _retrying(call, what: str, failures: list[str], attempts: int = 3):
    """An API call of the benchmark's own (not a figure) that a busy server may
    fail to answer in time even after the client's retries: again, counted."""
    for attempt in range(attempts):
        started = time.monotonic()
        try:
            return call()
        except (httpx.TransportError, _server_error()) as exc:
            if isinstance(exc, _server_error()) and exc.response.status_code < 500 or attempt == attempts - 1:
                raise
            failures.append(f"{type(exc).__name__} after {time.monotonic() - started:.0f} s while {what}")
            print(f"   (the Prefect API did not answer: {failures[-1]}; trying again)", file=sys.stderr, flush=True)
            time.sleep(5)
