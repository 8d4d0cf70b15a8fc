"""Several machines, on one: a real Prefect server (on PostgreSQL in the
PostgreSQL pass, configured only through CUSTODY_PREFECT_DATABASE_URL), the
deployments registered on a `process` work pool by `python -m
deployments.workpool`, and two `prefect worker start` processes. A batch of
holds runs through its steps; every step runs exactly once (one flow run, one
execution, one worker) and every legal action is in the audit trail once,
while both workers take work."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from custody.config import Settings
from custody.service.core import Core, Sender
from custody.service.intake import ingest
from custody.store import schema as t
from custody.store.db import make_engine, migrate
from models.clock import SystemClock
from models.policy import load_policy
from tests.builders import detainer_event, release_event
from tests.databases import database_url, prefect_database_url, prefect_server_uses
from tests.integration.cli import ROOT, custody_env
from tests.integration.test_cli import write_policy
from tests.integration.test_http import free_port

pytestmark = pytest.mark.slow

POOL = "custody-test"
WORKERS = ("worker-a", "worker-b")
CASES = 3
# Detainer mode: the hold starts with the release authorisation (T0). The steps:
# release order at T0 + 20 s, supervisors paged at T0 + 28 s, deadline T0 + 35 s.
POLICY = dict(mode="detainer", limit="35s", service_grace="30s", reminder_marks=[], release_order_lead="15s",
              page_supervisors_before="7s", pickup_poll_interval="60s")
STEPS = ("release-order", "page-supervisors", "deadline")
ACTIONS = ("release_ordered", "supervisors_paged", "deadline_passed_unconfirmed")


def wait_for(predicate, timeout, what, logs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    tails = "\n".join(f"--- {path.name}\n{path.read_text()[-2500:]}" for path in logs if path.exists())
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def start(argv, env, log):
    return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(processes, grace: float = 10.0):
    """All at once: each is asked to stop, and what is left after `grace` is
    killed with its process group (a worker's flow-run processes). The test is
    over by then, so nothing waits on a worker's own slow shutdown."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    home = tmp_path_factory.mktemp("pool")
    port = free_port()
    extra = {"CUSTODY_POLICY": str(write_policy(home, **POLICY)), "CUSTODY_PREFECT_PORT": str(port)}
    if prefect_database_url(home):
        extra["CUSTODY_PREFECT_DATABASE_URL"] = prefect_database_url(home)
    env = custody_env(home, **extra)
    for key in ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_SERVER_DATABASE_CONNECTION_URL"):
        env.pop(key, None)
    # What every machine of a deployment runs with: the settings' Prefect environment.
    env.update(Settings.from_env(env).prefect_env())
    env.update(PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="5")
    # The SQLite pass: Prefect's own SQLite file behind two workers, on a machine
    # that also runs the PostgreSQL pass, waits longer than its default 10 s for
    # its write lock (several workers belong on PostgreSQL, the other pass).
    env.setdefault("PREFECT_SERVER_DATABASE_TIMEOUT", "60")
    api = env["PREFECT_API_URL"]
    logs = [home / "server.log", home / "register.log", *(home / f"{w}.log" for w in WORKERS)]
    processes = [start([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                       env, logs[0])]
    from prefect.settings import PREFECT_API_URL, temporary_settings
    try:
        with temporary_settings(updates={PREFECT_API_URL: api}):
            wait_for(lambda: prefect_healthy(), 180, "the Prefect server", logs)
            if prefect_database_url(home):
                assert prefect_server_uses(prefect_database_url(home)), "the Prefect server is not on PostgreSQL"
            registered = subprocess.run([sys.executable, "-m", "deployments.workpool", "--pool", POOL], env=env, cwd=ROOT,
                                        capture_output=True, text=True, timeout=180)
            logs[1].write_text(registered.stdout + registered.stderr)
            assert registered.returncode == 0, registered.stderr[-3000:]
            for worker, log in zip(WORKERS, logs[2:]):
                processes.append(start([sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL,
                                        "--type", "process", "--name", worker], env, log))
            wait_for(lambda: workers_online() >= len(WORKERS), 120, "both workers to poll the pool", logs)
            engine = make_engine(database_url(home))
            migrate(engine)  # as every custody process does on start (registering the deployments opens no database)
            core = Core(engine, load_policy(write_policy(home, **POLICY)), SystemClock())
            yield {"env": env, "home": home, "core": core, "logs": logs}
            engine.dispose()
    finally:
        stop(list(reversed(processes)))


def prefect_healthy() -> bool:
    from prefect.client.orchestration import get_client
    try:
        with get_client(sync_client=True) as client:
            return client.api_healthcheck() is None
    except Exception:
        return False


def workers_online() -> int:
    from prefect.client.orchestration import get_client
    with get_client(sync_client=True) as client:
        return sum(w.status.value == "ONLINE" for w in client.read_workers_for_work_pool(POOL))


def runs_tagged(*tags):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=list(tags))), limit=200)


SUBMITTED = re.compile(r"Flow run '([^']+)' submitted to infrastructure")
REFUSED = re.compile(r"Aborted submission of flow run '([^']+)'")


def submissions(logs) -> Counter:
    """(worker, run name) -> how often that worker started that run as a process,
    from each worker's own output. Both workers may reach for the same run; the
    server lets one move it to Pending and refuses the other ("Aborted
    submission"), which then never starts it."""
    found = Counter()
    for worker, log in zip(WORKERS, logs[2:]):
        for name in SUBMITTED.findall(log.read_text()):
            found[(worker, name)] += 1
    return found


def refused(logs) -> int:
    return sum(len(REFUSED.findall(log.read_text())) for log in logs[2:])


def executions(run_id) -> int:
    from prefect.client.orchestration import get_client
    with get_client(sync_client=True) as client:
        return sum(state.type.value == "RUNNING" for state in client.read_flow_run_states(run_id))


def test_two_workers_share_the_holds_and_run_each_step_once(pool):
    from custody.adapters.prefect.sync import sync_case

    core, logs = pool["core"], pool["logs"]
    t0 = datetime.now(timezone.utc)
    case_ids = []
    for n in range(CASES):
        result = ingest(core, detainer_event(f"w-d{n}", f"PW-{n}", t0 - timedelta(hours=1), a_number=f"A40000000{n}"),
                        Sender("test"))
        assert ingest(core, release_event(f"w-r{n}", f"PW-{n}", t0), Sender("test")).result == "accepted"
        case_ids.append(result.case_id)
        assert sync_case(core, result.case_id) == "created"  # what `custody up`'s bridge does after a commit

    expected = {f"case-{c}-{step}" for c in case_ids for step in STEPS}

    def steps_done():
        runs = runs_tagged("hold-step")
        done = {r.name: r for r in runs if r.name in expected and r.state.type.value in ("COMPLETED", "FAILED")}
        return runs if set(done) == expected else None

    runs = wait_for(steps_done, 240, "every hold step to complete", logs)
    print(f"all hold steps completed {(datetime.now(timezone.utc) - t0).total_seconds():.0f} s after T0")
    # Nobody confirmed a release: each deadline step is red, saying so; the others did their part.
    for run in runs:
        if run.name in expected:
            failed = run.name.endswith("-deadline")
            assert run.state.type.value == ("FAILED" if failed else "COMPLETED"), (run.name, run.state)
            assert not failed or "the release is not confirmed" in run.state.message, run.state.message

    # Each step is one flow run, executed once, submitted by one worker.
    ours = [r for r in runs if r.name in expected]
    assert sorted(r.name for r in ours) == sorted(expected), Counter(r.name for r in ours)
    for run in ours:
        assert executions(run.id) == 1, run.name
    started = submissions(logs)
    for name in expected:
        assert [count for (_, step), count in started.items() if step == name] == [1], (name, started)
    by_worker = Counter()
    for (worker, _), count in started.items():  # hold steps, and case runs started and woken again
        by_worker[worker] += count
    print(f"runs started per worker: {dict(by_worker)}; duplicate submissions refused by the server: {refused(logs)}")
    assert set(by_worker) == set(WORKERS), f"one worker took all the work: {dict(by_worker)}"

    # Each legal action of each hold is in the audit trail exactly once.
    with core.engine.connect() as conn:
        audited = Counter(tuple(row) for row in conn.execute(
            select(t.audit.c.case_id, t.audit.c.action).where(t.audit.c.case_id.in_(case_ids),
                                                               t.audit.c.action.in_(ACTIONS))))
        release_orders = conn.execute(select(t.outbox.c.case_id, func.count()).where(
            t.outbox.c.kind == "release-order", t.outbox.c.case_id.in_(case_ids)).group_by(t.outbox.c.case_id)).all()
    assert audited == Counter({(c, a): 1 for c in case_ids for a in ACTIONS})
    # One release order per case, to the desk, the supervisors and ICE.
    assert sorted(tuple(r) for r in release_orders) == sorted((c, 3) for c in case_ids)
