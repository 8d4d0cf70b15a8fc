"""The whole system as `custody up` runs it: a real Prefect server, the served
deployments, the event endpoint and the backstop, with a compressed policy
(deadline T0 + 100 s, release ordered at T0 + 60 s, service grace 45 s)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from custody.adapters.prefect.artifacts import literal
from custody.config import DEFAULT_SENDERS, Settings, write_default_senders
from models.events import EVENT_TYPES
from tests.builders import (
    copy_event,
    detainer_event,
    lift_event,
    release_event,
    released_event,
    scheduled_event,
    service_event,
    transfer_event,
)
from tests.databases import database_url, prefect_database_url, prefect_server_uses
from tests.integration.cli import ROOT, custody, custody_env, custody_json, jsonl
from tests.integration.leaks import Person, files_under, in_texts, occurrences, prefect_api_text
from tests.integration.receivers import JsonReceiver
from tests.integration.test_cli import write_policy
from tests.integration.test_http import free_port

pytestmark = pytest.mark.slow

POLICY_GRACE_S = 45
POLICY = dict(mode="wso", limit="100s", service_grace=f"{POLICY_GRACE_S}s", reminder_marks=["70s"], release_order_lead="40s",
              page_supervisors_before="20s", pickup_poll_interval="60s", report_wait="10s")


GROUPS = ("ice", "release-desk", "wso", "supervisors", "sheriff", "records")
FEED, FEED_TOKEN = "jail-feed", "jail-feed-token-0123456789abcdef"
assert FEED not in DEFAULT_SENDERS


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    home = tmp_path_factory.mktemp("live")
    prefect_port, http_port = free_port(), free_port()
    # Every group's notifications go to a real receiver on loopback, through the relay of `custody up`.
    receiver = JsonReceiver()
    (home / "apprise.yml").write_text("version: 1\nurls:\n" + "".join(
        f"  - json://127.0.0.1:{receiver.port}/{group}:\n      - tag: {group}\n" for group in GROUPS))
    env = custody_env(home, CUSTODY_POLICY=str(write_policy(home, **POLICY)), CUSTODY_HTTP_PORT=str(http_port),
                      CUSTODY_PREFECT_PORT=str(prefect_port), PREFECT_RUNNER_POLL_FREQUENCY="2",
                      CUSTODY_STALE_RUN_CLAIM_SECONDS="20")
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_HOME", None)
    if prefect_database_url(home):  # the PostgreSQL pass: Prefect's database on the same server
        env["CUSTODY_PREFECT_DATABASE_URL"] = prefect_database_url(home)
    # The standard senders, as a first start writes them, and the jail's feed of every
    # event type that the tests post through the endpoint.
    write_default_senders(home / "senders.toml")
    with open(home / "senders.toml", "a") as senders:
        senders.write(f'\n[[sender]]\nname = "{FEED}"\ntoken = "{FEED_TOKEN}"\nevents = {json.dumps(list(EVENT_TYPES))}\n')
    engine = create_engine(database_url(home))
    custody(env, "roster", "load", str(ROOT / "examples" / "roster.csv"))
    up = subprocess.Popen([sys.executable, "-m", "custody", "up"], env=env, cwd=ROOT, stdout=open(home / "up.log", "w"),
                          stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{prefect_port}/api"
    from prefect.settings import PREFECT_API_URL, temporary_settings
    with temporary_settings(updates={PREFECT_API_URL: api}):
        try:
            wait_for(lambda: deployments_ready(), 150, "the served deployments", home)
            if prefect_database_url(home):
                assert prefect_server_uses(prefect_database_url(home)), "custody up's Prefect server is not on PostgreSQL"
            yield {"env": env, "home": home, "engine": engine, "prefect_port": prefect_port, "up": up,
                   "http_port": http_port, "receiver": receiver}
        finally:
            engine.dispose()
            up.send_signal(signal.SIGINT)
            try:
                up.wait(timeout=60)
            except subprocess.TimeoutExpired:
                up.kill()
            receiver.close()


def deployments_ready() -> bool:
    from prefect.client.orchestration import get_client
    try:
        with get_client(sync_client=True) as client:
            for name in ("custody-case/case", "custody-hold-step/hold-step", "custody-backstop/backstop", "custody-alert/alert",
                         "custody-acknowledge-notice/acknowledge", "custody-relay/relay",
                         "custody-record-detainer/record-detainer", "custody-confirm-release/confirm-release"):
                client.read_deployment_by_name(name)
        return True
    except Exception:
        return False


# Waits, not precision checks: generous, because CI runs the SQLite and the
# PostgreSQL pass at once on two cores, and a Prefect run start costs ~1.6 CPU-s.
WAIT_SCALE = 2


def wait_for(predicate, timeout, what, home=None):
    deadline = time.monotonic() + timeout * WAIT_SCALE
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    log = (home / "up.log").read_text()[-3000:] if home else ""
    raise AssertionError(f"timed out waiting for {what}\n{log}")


def now():
    return datetime.now(timezone.utc).replace(microsecond=0)


def db(live, sql, *args):
    """A query on the system's database (SQLite or PostgreSQL); `?` marks a parameter."""
    parts = sql.split("?")
    sql = "".join(part + (f":p{i}" if i < len(parts) - 1 else "") for i, part in enumerate(parts))
    with live["engine"].connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql), {f"p{i}": arg for i, arg in enumerate(args)})]


def run_of(live, case_id):
    from prefect.client.orchestration import get_client
    rows = db(live, "select flow_run_id from case_runs where case_id = ?", case_id)
    if not rows or rows[0][0] is None:
        return None
    with get_client(sync_client=True) as client:
        return client.read_flow_run(rows[0][0])


def runs_tagged(case_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"case-{case_id}"])))


def waiting_for_form(live, case_id, attempt=None):
    run = run_of(live, case_id)
    if run is None or run.state.name != "Suspended" or not run.state.state_details.run_input_keyset:
        return None
    keyset = run.state.state_details.run_input_keyset
    if attempt is not None and not keyset["response"].endswith(f"-{attempt}-response"):
        return None
    # The run is Suspended before it saves the form's schema and then its description
    # (prefect/flow_runs.py): until both are there, a resume is refused ("schema not found").
    try:
        description(run.id, keyset)
    except Exception:
        return None
    return run, keyset


def resume(run_id, run_input):
    from prefect.client.orchestration import get_client
    with get_client(sync_client=True) as client:
        return client.resume_flow_run(run_id, run_input=run_input)


def description(run_id, keyset):
    from prefect.client.orchestration import get_client
    with get_client(sync_client=True) as client:
        return client.read_flow_run_input(run_id, keyset["description"])


def ingest(live, *events):
    """The events in one request to the endpoint of `custody up`, in order, as the
    jail's systems send them; its bridge brings each touched case run in line
    after the commit. (A `custody ingest` per call would cost a process start,
    ~1.3 CPU-s with Prefect's client; the first test below keeps that path.)"""
    response = httpx.post(f"http://127.0.0.1:{live['http_port']}/events", json=list(events), timeout=60,
                          headers={"Authorization": f"Bearer {FEED_TOKEN}"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert all(r["result"] == "accepted" for r in results), results
    return results


def case_id_of(result: dict) -> str:
    return result["case_id"]


def status_of(live, case_id):
    """Polled in the database: a `custody case show` per look would cost a process start each."""
    return db(live, "select status from cases where case_id = ?", case_id)[0][0]


def view_when(live, case_id, status, timeout, what):
    """The case as `custody case show` shows it, once its status is `status`."""
    wait_for(lambda: status_of(live, case_id) == status, timeout, what, live["home"])
    return custody_json(live["env"], "case", "show", case_id)


def form(badge="W-1024", warrant="W-77", served_at=None, inside=True):
    return {"officer_badge": badge, "warrant_number": warrant,
            "served_at": (served_at or now()).isoformat(), "served_inside_facility": inside}


def test_one_run_per_case_named_and_tagged_at_creation(live):
    t = now()
    # Through `custody ingest`, which brings the case's run in line itself when Prefect is up.
    [line] = custody(live["env"], "ingest", "-", stdin=jsonl(
        detainer_event("a-d1", "PA-1", t - timedelta(minutes=5), a_number="A300000001"))).stdout.splitlines()
    case_id = line.split("(")[1].rstrip(")")
    run = wait_for(lambda: run_of(live, case_id), 30, "the case run")
    assert run.name == f"case-{case_id}"
    assert {f"case-{case_id}", "booking-PA-1", "facility-RCJ"} <= set(run.tags)
    wait_for(lambda: (r := run_of(live, case_id)) and r.state.name == "Suspended", 60, "the run to wait for release")
    ingest(live, detainer_event("a-d2", "PA-1", t - timedelta(minutes=4), a_number="A300000001"),
           detainer_event("a-d3", "PA-1", t - timedelta(minutes=3), a_number="A300000001", event_number="EV7"))
    wait_for(lambda: in_step_and_waiting(live, case_id), 60, "the bridge to bring the run in line", live["home"])
    from custody.adapters.prefect.runs import create_case_run
    assert create_case_run(case_id, "RCJ", "PA-1") == str(run.id)  # the idempotency key returns the same run
    time.sleep(3)
    assert [r.name for r in runs_tagged(case_id)] == [f"case-{case_id}"]


def test_every_step_of_a_case_is_an_event_in_prefects_feed_naming_the_case_and_its_run(live):
    from prefect.client.orchestration import get_client

    from tests.integration.leaks import case_step_events

    t = now()
    case_id = case_id_of(ingest(live, detainer_event("ev-d1", "PV-1", t - timedelta(hours=1), a_number="A300000098"),
                                release_event("ev-r1", "PV-1", t - timedelta(seconds=10)),
                                service_event("ev-s1", "PV-1", t, badge="W-1024"))[0])
    run = wait_for(lambda: run_of(live, case_id), 60, "the case run", live["home"])

    def steps():
        with get_client(sync_client=True) as client:
            found = case_step_events(client, f"custody.case.{case_id}")
        names = [e["event"] for e in found]
        return found if "custody.case.hold-started" in names else None

    # Steps committed together share their instant: the feed's order among them is Prefect's; the audit's is seq.
    found = sorted(wait_for(steps, 90, "the case's steps in Prefect's event feed", live["home"]), key=lambda e: e["payload"]["seq"])
    assert [e["event"] for e in found] == ["custody.case.case-opened", "custody.case.release-authorized",
                                           "custody.case.hold-started"]
    started = found[-1]
    assert started["resource"]["prefect.resource.name"] == f"case-{case_id}" and started["resource"]["custody.status"] == "held"
    assert {"prefect.resource.id": f"prefect.flow-run.{run.id}", "prefect.resource.role": "flow-run",
            "prefect.resource.name": f"case-{case_id}"} in started["related"]


def executions(run_id) -> int:
    """How many times the run has entered Running: each one a new process."""
    from prefect.client.orchestration import get_client
    with get_client(sync_client=True) as client:
        return sum(1 for state in client.read_flow_run_states(run_id) if state.type.value == "RUNNING")


def timeline_of(case_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"case-{case_id.lower()}-timeline"])),
                                      sort=ArtifactSort.CREATED_DESC, limit=1)
        return found[0] if found else None


def in_step_and_waiting(live, case_id):
    run = run_of(live, case_id)  # None until the bridge has created it
    if run is None:
        return None
    synced = db(live, "select synced_version from case_runs where case_id = ?", case_id)[0][0]
    return run.state.name == "Suspended" and synced >= view_version(live, case_id) and run


def test_a_run_wakes_only_when_what_it_mirrors_changes_and_an_ended_case_ends_it_without_a_process(live):
    t = now()
    case_id = case_id_of(ingest(live, detainer_event("m-d1", "PM-1", t - timedelta(hours=2), a_number="A300000010"))[0])
    run = wait_for(lambda: in_step_and_waiting(live, case_id), 60, "the run to wait for the release", live["home"])
    started = executions(run.id)
    assert started >= 1

    # A copy served and an expected release: the case's version moves, nothing the run waits on does.
    version = view_version(live, case_id)
    ingest(live, copy_event("m-c1", "PM-1", now()), scheduled_event("m-s1", "PM-1", now(), now() + timedelta(days=3)))
    assert view_version(live, case_id) >= version + 2
    wait_for(lambda: in_step_and_waiting(live, case_id), 30, "the run to be marked in step", live["home"])
    # The timeline still follows the case, published by the sync itself.
    wait_for(lambda: (a := timeline_of(case_id)) and "detainer.copy\\_served" in a.data and "release.scheduled" in a.data,
             30, "the fresh timeline", live["home"])
    assert timeline_of(case_id).flow_run_id == run.id
    time.sleep(3)  # a woken run would be Scheduled or Running by now
    assert run_of(live, case_id).state.name == "Suspended" and executions(run.id) == started

    # The release authorisation changes the status: the run is woken (for the officer's form).
    ingest(live, release_event("m-r1", "PM-1", now()))
    wait_for(lambda: in_step_and_waiting(live, case_id) and executions(run.id) > started, 60, "the run to wake and wait again",
             live["home"])
    woken = executions(run.id)

    # The person is handed to ICE: the case ends and so does its run, Completed with the
    # outcome as the flow would end it, without a new process.
    ingest(live, transfer_event("m-x1", "PM-1", now()))
    ended = wait_for(lambda: (r := run_of(live, case_id)) and r.state.type.value == "COMPLETED" and r, 30, "the run to end",
                     live["home"])
    status, reason = db(live, "select status, status_reason from cases where case_id = ?", case_id)[0]
    assert status == "transferred" and ended.state.message == f"transferred: {reason}".strip()
    assert db(live, "select synced_version from case_runs where case_id = ?", case_id)[0][0] == view_version(live, case_id)
    assert "custody.transferred" in timeline_of(case_id).data
    time.sleep(3)
    assert executions(run.id) == woken and run_of(live, case_id).state.type.value == "COMPLETED"

    # A later wake is harmless: the run re-reads the ended case and completes again, with the same outcome.
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    from custody.adapters.prefect.runs import wake_case_run
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Crashed(message="test"), force=True)
    assert wake_case_run(str(run.id)) == "restarted"
    again = wait_for(lambda: (r := run_of(live, case_id)) and r.state.type.value == "COMPLETED" and executions(run.id) > woken and r,
                     60, "the woken run to end again", live["home"])
    assert db(live, "select status from cases where case_id = ?", case_id) == [("transferred",)]
    states = {r.name: r.state.type.value for r in runs_tagged(case_id) if "hold-step" in r.tags}
    assert "SCHEDULED" not in states.values()


def test_a_run_that_is_executing_when_its_case_ends_is_left_to_end_by_itself(live):
    """The sync ends only runs that no process is executing: a Running run
    re-reads the case and ends by itself; once its process is gone (Crashed),
    the sync ends it, Completed with the outcome."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed, Running

    from custody.adapters.prefect.sync import sync_case
    from custody.config import Settings
    from custody.wiring import build_core

    t = now()
    case_id = case_id_of(ingest(live, detainer_event("n-d1", "PN-1", t - timedelta(hours=1), a_number="A300000011"))[0])
    run = wait_for(lambda: in_step_and_waiting(live, case_id), 60, "the run to wait", live["home"])
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Running(), force=True)  # as if a runner had just started it
    # Stored by a process that leaves the run alone (the endpoint's bridge would sync it at
    # once, racing this test's own syncs); only the reconciler may be first, as ever.
    custody({**live["env"], "CUSTODY_PREFECT": "off"}, "ingest", "-", stdin=jsonl(lift_event("n-l1", "PN-1", now())))
    core = build_core(Settings.from_env(dict(live["env"])))
    try:
        assert sync_case(core, case_id) == "left running"
        assert run_of(live, case_id).state.type.value == "RUNNING"
        assert db(live, "select synced_version from case_runs where case_id = ?", case_id)[0][0] < view_version(live, case_id)
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, Crashed(message="worker killed (test)"), force=True)
        assert sync_case(core, case_id) in ("ended", "in step")  # the bridge or the reconciler may be first
    finally:
        core.engine.dispose()
    ended = wait_for(lambda: (r := run_of(live, case_id)) and r.state.type.value == "COMPLETED" and r, 30, "the run to end")
    assert ended.state.message.startswith("closed")
    assert db(live, "select synced_version from case_runs where case_id = ?", case_id)[0][0] == view_version(live, case_id)


def test_a_case_that_opens_closed_gets_a_completed_run_without_a_process(live):
    """A detainer for someone already released opens a closed case: its run is
    created for the record and ended at once, with the outcome."""
    t = now()
    ingest(live, released_event("q-o1", "PQ-1", t - timedelta(minutes=10)))
    case_id = case_id_of(ingest(live, detainer_event("q-d1", "PQ-1", t - timedelta(minutes=5), a_number="A300000012"))[0])
    run = wait_for(lambda: (r := run_of(live, case_id)) and r.state.type.value == "COMPLETED" and r, 30, "the run to end",
                   live["home"])
    assert run.state.message.startswith("closed") and run.name == f"case-{case_id}"
    time.sleep(3)
    assert executions(run.id) == 0 and run_of(live, case_id).state.type.value == "COMPLETED"


def test_the_officers_form_refuses_and_asks_again_then_the_hold_runs_to_pickup(live):
    t = now()
    lines = ingest(live, detainer_event("b-d1", "PB-1", t - timedelta(hours=1), a_number="A300000002"),
                   release_event("b-r1", "PB-1", t))
    case_id = case_id_of(lines[0])
    run, keyset = wait_for(lambda: waiting_for_form(live, case_id), 40, "the officer's form")
    shown = description(run.id, keyset)
    assert case_id in shown and "PB-1" in shown and "Hold deadline" in shown

    # An empty form cannot resume the run: the server refuses it against the schema.
    assert resume(run.id, {}).status.value == "REJECT"
    assert resume(run.id, {"officer_badge": "", "warrant_number": "W-77", "served_at": now().isoformat(),
                           "served_inside_facility": True}).status.value == "REJECT"
    # A badge not on the roster is refused with the reason, and the form is asked again;
    # the refused report counts for nothing (no service, no hold) and stays on the record.
    assert resume(run.id, form(badge="W-9999")).status.value == "ACCEPT"
    refused = wait_for(lambda: db(live, "select actor, reason from audit_trail where case_id = ? and action = 'service_refused'",
                                  case_id), 20, "the refusal on the record")
    assert refused[0][0] == "prefect-ui:W-9999" and "officer_badge: badge 'W-9999' is not on the WSO roster" in refused[0][1]
    run, keyset = wait_for(lambda: waiting_for_form(live, case_id, attempt=1), 40, "the form asked again")
    # (The form is Markdown: the reason's marks are escaped, so the UI shows its characters.)
    assert literal("officer_badge: badge 'W-9999' is not on the WSO roster") in json.loads(description(run.id, keyset))
    assert db(live, "select status, served_by, hold_started_at from cases where case_id = ?", case_id) == [
        ("release_authorized", None, None)]
    assert [outcome for (outcome,) in db(live, "select outcome from event_inbox where event_id like ?", f"form-{case_id}-%")] == [
        "refused: officer_badge: badge 'W-9999' is not on the WSO roster"]
    # The officer read the outcome on the run's page, in its logs; the record keeps the attempt.
    assert any("REFUSED" in line and "W-9999" in line for line in run_logs(run.id))
    record = custody(live["env"], "case", "record", case_id).stdout
    assert "service_refused by prefect-ui:W-9999: report by badge W-9999 of a service at " in record
    assert "is not on the WSO roster" in record
    # An expired certification (W-1040 expired 2025-12-31) is refused too.
    assert resume(run.id, form(badge="W-1040")).status.value == "ACCEPT"
    run, keyset = wait_for(lambda: waiting_for_form(live, case_id, attempt=2), 40, "the form asked a third time")
    assert "not certified" in description(run.id, keyset)
    assert resume(run.id, form()).status.value == "ACCEPT"

    view = view_when(live, case_id, "held", 40, "the hold")
    assert view["served_by"] == "W-1024"
    wait_for(lambda: any("RECORDED" in line and "HELD" in line for line in run_logs(run.id)), 20, "the outcome in the run's logs")
    expected = sorted(f"case-{case_id}-{s}" for s in ("reminder-1m10s", "release-order", "page-supervisors", "deadline"))
    wait_for(lambda: sorted(r.name for r in runs_tagged(case_id) if "hold-step" in r.tags) == expected, 30, "the hold steps")
    wait_for(lambda: (r := run_of(live, case_id)) and r.state.name == "Suspended" and not r.state.state_details.run_input_keyset,
             40, "the run to wait during the hold")

    # Re-running the flow from the top repeats no side effect.
    # (Only what the run itself caused: the hold's own reminders may fall due meanwhile.)
    counts = lambda: (db(live, "select count(*) from audit_trail where case_id = ? and source_event_id like 'form-%'", case_id),
                      db(live, "select count(*) from outbox where case_id = ? and kind = 'hold-started'", case_id),
                      db(live, "select count(*) from event_inbox where case_id = ? and event_id like 'form-%'", case_id))
    before = counts()
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Scheduled(), force=True)
    wait_for(lambda: (r := run_of(live, case_id)) and r.state.name == "Suspended"
             and db(live, "select synced_version from case_runs where case_id = ?", case_id)[0][0] >= view_version(live, case_id),
             40, "the re-executed run to wait again")
    time.sleep(2)
    assert counts() == before
    assert before[2] == [(3,)]  # the two refused forms and the accepted one, each recorded once

    ingest(live, transfer_event("b-x1", "PB-1", now()))
    wait_for(lambda: (r := run_of(live, case_id)) and r.state.type.value == "COMPLETED", 40, "the run to finish")
    states = {r.name: r.state.type.value for r in runs_tagged(case_id) if "hold-step" in r.tags}
    assert "SCHEDULED" not in states.values()
    assert states[f"case-{case_id}-deadline"] == "CANCELLED"


def run_logs(run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    with get_client(sync_client=True) as client:
        return [log.message for log in client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))]


def test_a_form_submitted_10_seconds_before_the_window_closes_counts_on_a_busy_machine(live):
    """Prefect stores the form; the run's new process may start many seconds
    later on a loaded machine. The reader in `custody up` records the service
    meanwhile, and the window waits for it: the hold stands."""
    t = now()
    lines = ingest(live, detainer_event("w-d1", "PW-1", t - timedelta(hours=1), a_number="A300000020"),
                   release_event("w-r1", "PW-1", t))
    case_id = case_id_of(lines[0])
    run, _ = wait_for(lambda: waiting_for_form(live, case_id), 40, "the officer's form")
    closes = t + timedelta(seconds=POLICY_GRACE_S)
    assert datetime.now(timezone.utc) < closes - timedelta(seconds=10), "the form came too late for this test"
    time.sleep((closes - timedelta(seconds=10) - datetime.now(timezone.utc)).total_seconds())
    with busy_loops(2):
        assert resume(run.id, form(served_at=now())).status.value == "ACCEPT"
        view = view_when(live, case_id, "held", 40, "the hold")
    assert view["served_by"] == "W-1024" and view["hold_authorized"] is True
    assert db(live, "select count(*) from event_inbox where event_id like ? and outcome like 'hold_started%'",
              f"form-{case_id}-%") == [(1,)]


class busy_loops:
    """`yes > /dev/null` n times, for as long as the block runs (as a shared CI machine is)."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        self.procs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(self.n)]
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
            proc.wait()


def view_version(live, case_id):
    return db(live, "select version from cases where case_id = ?", case_id)[0][0]


def test_lift_and_notify_only_end_their_runs(live):
    t = now()
    lifted = case_id_of(ingest(live, detainer_event("c-d1", "PC-1", t - timedelta(hours=1), a_number="A300000003"))[0])
    notify = case_id_of(ingest(live, detainer_event("c-d2", "PC-2", t - timedelta(hours=1), a_number="A300000004", form="I-247G"))[0])
    wait_for(lambda: (r := run_of(live, lifted)) and r.state.name == "Suspended", 40, "the run of the case to lift")
    ingest(live, lift_event("c-l1", "PC-1", now()), release_event("c-r2", "PC-2", now()))
    for case_id, status in ((lifted, "closed"), (notify, "closed")):
        wait_for(lambda: (r := run_of(live, case_id)) and r.state.type.value == "COMPLETED" and r, 60, f"{case_id} to end")
        assert custody_json(live["env"], "case", "show", case_id)["status"] == status


def test_a_crashed_run_of_a_case_that_then_ends_is_restarted_and_ends_with_it(live):
    """A worker killed mid-run leaves its run Crashed; the case goes on in the
    database. The mirror must not stay Crashed: the run is restarted, reads that
    the case has ended, and completes."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    t = now()
    case_id = case_id_of(ingest(live, detainer_event("k-d1", "PK-1", t - timedelta(hours=1), a_number="A300000008"))[0])
    run = wait_for(lambda: (r := run_of(live, case_id)) and r.state.name == "Suspended" and r, 60, "the run to wait")
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Crashed(message="worker killed (test)"), force=True)
    ingest(live, lift_event("k-l1", "PK-1", now()))
    wait_for(lambda: (r := run_of(live, case_id)) and r.state.type.value == "COMPLETED", 90, "the crashed run to end with the case",
             live["home"])
    assert custody_json(live["env"], "case", "show", case_id)["status"] == "closed"


def test_a_run_left_pending_by_a_killed_runner_is_reclaimed(live):
    """A serve process killed between claiming a run (Pending) and starting it
    leaves the run Pending for good; the reconciler gives it back to the runners."""
    from prefect.client.orchestration import get_client
    from prefect.states import Pending

    t = now()
    case_id = case_id_of(ingest(live, detainer_event("h-d1", "PH-1", t - timedelta(hours=1), a_number="A300000009"))[0])
    run = wait_for(lambda: (r := run_of(live, case_id)) and r.state.name == "Suspended" and r, 60, "the run to wait")
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Pending(), force=True)  # claimed by a runner that then died
    ingest(live, lift_event("h-l1", "PH-1", now()))
    wait_for(lambda: (r := run_of(live, case_id)) and r.state.type.value == "COMPLETED", 150, "the pending run to be reclaimed",
             live["home"])


def test_the_release_is_ordered_on_time_while_prefect_is_down_and_the_run_catches_up(live):
    t0 = now() - timedelta(seconds=20)
    lines = ingest(live, detainer_event("d-d1", "PD-1", t0 - timedelta(hours=1), a_number="A300000005"),
                   release_event("d-r1", "PD-1", t0))
    case_id = case_id_of(lines[0])
    run, _ = wait_for(lambda: waiting_for_form(live, case_id), 40, "the officer's form")
    assert resume(run.id, form(served_at=t0 + timedelta(seconds=5))).status.value == "ACCEPT"
    view = view_when(live, case_id, "held", 40, "the hold")

    server = subprocess.run(["pgrep", "-f", f"prefect server start --host 127.0.0.1 --port {live['prefect_port']}"],
                            capture_output=True, text=True).stdout.split()
    assert server, "the Prefect server process"
    for pid in server:
        os.kill(int(pid), signal.SIGKILL)

    order_at = datetime.fromisoformat(view["release_order_at"].replace("Z", "+00:00"))
    deadline = datetime.fromisoformat(view["deadline_at"].replace("Z", "+00:00"))
    assert now() < order_at, "the server went down before the release-order time"
    ordered = view_when(live, case_id, "release_ordered", (order_at - now()).total_seconds() + 30, "the release order")
    ordered_at = datetime.fromisoformat(ordered["release_ordered_at"].replace("Z", "+00:00"))
    assert order_at <= ordered_at < order_at + timedelta(seconds=3) and ordered_at < deadline

    # An event accepted while Prefect is down waits in the database, not in Prefect.
    ingest(live, copy_event("d-c1", "PD-1", now()))

    # Prefect comes back (the supervisor restarts it) and the run catches up with the database.
    wait_for(lambda: db(live, "select synced_version from case_runs where case_id = ?", case_id)[0][0] >= view_version(live, case_id)
             and (r := run_of(live, case_id)) is not None and r.state.name == "Suspended", 120, "the run to catch up", live["home"])
    assert any(i.get("type") == "detainer.copy_served" for i in custody_json(live["env"], "case", "show", case_id)["timeline"])

    # The desk confirms the release: the run ends with the outcome.
    ingest(live, released_event("d-o1", "PD-1", now()))
    wait_for(lambda: (r := run_of(live, case_id)) and r.state.type.value == "COMPLETED", 60, "the run to end released")
    assert custody_json(live["env"], "case", "show", case_id)["status"] == "released"


def test_artifacts_show_the_board_and_timelines_without_personal_data(live):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    case_id = case_id_of(ingest(live, detainer_event("e-d1", "PE-1", now() - timedelta(hours=1), a_number="A300000006",
                                                     name="Zebulon Unmistakable"))[0])
    key = f"case-{case_id}-timeline"

    def artifact(name):
        with get_client(sync_client=True) as client:
            found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[name])),
                                          sort=ArtifactSort.CREATED_DESC, limit=1)
            return found[0] if found else None

    timeline = wait_for(lambda: artifact(key), 60, "the case timeline artifact")
    assert case_id in timeline.data and "detainer.received" in timeline.data
    assert "[The custody board: every open case](/artifacts/key/custody-board)" in timeline.data  # one click away
    board = wait_for(lambda: (a := artifact("custody-board")) and case_id in str(a.data) and a, 90, "the custody board")
    for text in (timeline.data, str(board.data)):
        assert "Zebulon" not in text and "A300000006" not in text and "1990-01-02" not in text

    # The run's Artifacts tab holds one timeline, the current one: the stale versions go.
    ingest(live, release_event("e-r1", "PE-1", now()))

    def one_current():
        from prefect.client.schemas.filters import ArtifactFilterFlowRunId
        with get_client(sync_client=True) as client:
            found = client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[timeline.flow_run_id])))
        return found if len(found) == 1 and "release.authorized" in found[0].data else None

    wait_for(one_current, 90, "one current timeline on the case run", live["home"])


def test_a_failed_deadline_run_alerts_supervisors_through_the_outbox(live):
    from prefect.client.orchestration import get_client
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("custody-hold-step/hold-step")
        client.create_flow_run_from_deployment(deployment.id, name="broken-hold-step",
                                               parameters={"case_id": "1999-99999", "step": "deadline"})
    rows = wait_for(lambda: db(live, "select recipient_group, urgency, subject from outbox where kind = 'ops-failed' "
                                     "and subject like '%custody-hold-step%'"), 90, "the operations alert", live["home"])
    assert {r[0] for r in rows} == {"supervisors", "sheriff"} and {r[1] for r in rows} == {"urgent"}


def test_records_staff_record_an_ice_acknowledgement_through_the_ui_form(live):
    from prefect.client.orchestration import get_client

    t = now()
    case_id = case_id_of(ingest(live, detainer_event("f-d1", "PF-1", t - timedelta(hours=1), a_number="A300000007"),
                                release_event("f-r1", "PF-1", t))[0])
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("custody-acknowledge-notice/acknowledge")
        client.create_flow_run_from_deployment(deployment.id, parameters={
            "booking_number": "PF-1", "notice": "release-notice", "acknowledged_by": "ERO duty officer K"})
    acked = wait_for(lambda: db(live, "select acknowledged_by from outbox where case_id = ? and kind = 'release-notice' "
                                      "and acknowledged_at is not null", case_id), 60, "the acknowledgement", live["home"])
    assert acked == [("ERO duty officer K",)]


def test_records_staff_and_the_release_desk_report_through_run_forms_and_a_refusal_fails_its_run(live):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    t = now()
    local = lambda instant: instant.astimezone(timezone(timedelta(hours=-5))).isoformat()  # any offset is taken as given

    def run(deployment: str, **parameters):
        with get_client(sync_client=True) as client:
            return client.create_flow_run_from_deployment(client.read_deployment_by_name(deployment).id,
                                                          parameters=parameters).id

    def ended(run_id):
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(run_id).state
            return state if state.is_final() else None

    opened = run("custody-record-detainer/record-detainer", booking_number="PF-9", detainer_form="I-247A",
                 requests_custody=True, a_number="A300000099", ice_event_number="EV-F9", issuing_office="ERO Atlanta",
                 issued_at=local(t - timedelta(hours=3)), subject_name="Form Person", subject_dob="1980-05-06",
                 identity_verified=True, warrant_form="I-200", warrant_number="W-F9", received_at=local(t - timedelta(hours=2)))
    assert wait_for(lambda: ended(opened), 90, "the detainer form's run", live["home"]).type is StateType.COMPLETED
    [(case_id, sender)] = db(live, "select case_id, sender from event_inbox where booking_number = 'PF-9'")
    assert sender == "prefect-ui" and status_of(live, case_id) == "awaiting_release"
    assert [(n, str(d), a) for n, d, a in db(live, "select subject_name, subject_dob, a_number from detainers "
                                                  "where case_id = ?", case_id)] == [("Form Person", "1980-05-06", "A300000099")]
    with get_client(sync_client=True) as client:  # recorded, the person is taken out of the run's parameters
        parameters = client.read_flow_run(opened).parameters
    assert {parameters[k] for k in ("subject_name", "subject_dob", "a_number")} == {"(kept in the custody database, not in Prefect)"}
    assert parameters["booking_number"] == "PF-9" and parameters["ice_event_number"] == "EV-F9"

    refused = run("custody-confirm-release/confirm-release", booking_number="PF-9", released_by="Desk 2",
                  released_at=local(t + timedelta(hours=1)))
    state = wait_for(lambda: ended(refused), 90, "the refused form's run", live["home"])
    assert state.type is StateType.FAILED and "not recorded: released_at: is more than 5 minutes" in state.message
    assert status_of(live, case_id) == "awaiting_release"

    released = run("custody-confirm-release/confirm-release", booking_number="PF-9", released_by="Desk 2")
    assert wait_for(lambda: ended(released), 90, "the release form's run", live["home"]).type is StateType.COMPLETED
    assert status_of(live, case_id) == "released"


def test_the_monthly_report_deployment_publishes_its_artifact_and_sends_it(live):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("custody-report/monthly-report")
        [schedule] = deployment.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 6 1 * *", "America/New_York")
        assert client.read_deployment_by_name("custody-report/annual-report").schedules[0].schedule.cron == "0 6 1 1 *"
        run = client.create_flow_run_from_deployment(deployment.id, parameters={"kind": "monthly", "today": "2026-12-01"})

    def artifact():
        with get_client(sync_client=True) as client:
            found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["monthly-report"])),
                                          sort=ArtifactSort.CREATED_DESC, limit=1)
            return found[0] if found and found[0].flow_run_id == run.id else None

    published = wait_for(artifact, 90, "the monthly report artifact", live["home"])
    assert published.type == "markdown" and "# Custody report, 2026-11-01 to 2026-11-30" in published.data
    assert published.data.count("data:image/png;base64,") == 5  # the charts, inline in the UI
    assert (live["home"] / "reports" / "monthly-2026-11" / "hours-held.png").exists()
    sent = db(live, "select recipient_group from outbox where kind = 'monthly-report'")
    assert sorted(r[0] for r in sent) == ["sheriff", "supervisors"]


def test_everything_custody_up_starts_listens_on_loopback_only(live):
    from tests.integration.test_access import LOOPBACK, listening_sockets, process_tree
    sockets = listening_sockets(process_tree(live["up"].pid))
    ports = {port for _, port in sockets}
    assert {live["http_port"], live["prefect_port"]} <= ports, sockets  # the endpoint and the Prefect server (UI, API)
    assert {address for address, _ in sockets} <= LOOPBACK, sockets


# Unmistakable people: nothing else in the system could contain these strings.
PEOPLE = {
    "held": Person("Quintrellazar Vasquoyelaran", "1961-07-23", "A907315284"),
    "unverified": Person("Ottolindeva Brzezinfaure", "1958-11-04", "A806204173"),
    "lifted": Person("Lysandrio Okonkwohalvern", "1973-02-19", "A795193062"),
}
NAME_GROUPS = {"ice", "release-desk", "wso"}  # models/notices.py: who may see the name; the A-number: ice only


def detainer_of(person: Person, event_id: str, booking: str, at: datetime, **options) -> dict:
    event = detainer_event(event_id, booking, at, a_number=person.a_number, name=person.name, **options)
    event["subject"]["dob"] = person.dob
    return event


def dump_database(url: str, to: Path) -> None:
    """A PostgreSQL database as SQL text (pg_dump), so the search reads it as it reads SQLite's files."""
    import shutil

    from sqlalchemy.engine import make_url
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    to.parent.mkdir(parents=True, exist_ok=True)
    pg_dump = shutil.which("pg_dump") or sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))[-1]
    subprocess.run([str(pg_dump), "--no-owner", "--file", str(to), plain], check=True, timeout=120)


def test_personal_data_stays_where_it_belongs(live):
    """Names, dates of birth and A-numbers run through the whole system (the
    case runs, hold steps, artifacts, the relay), then are
    looked for in the Prefect database and its files, the server's and the
    serve process's logs, everything the Prefect API serves, and the messages
    each group received. Runs last in this module, so every case of the module
    is searched for too."""
    import tomllib

    import httpx

    env, home = live["env"], live["home"]
    held, unverified, lifted = PEOPLE["held"], PEOPLE["unverified"], PEOPLE["lifted"]
    t0 = now() - timedelta(seconds=20)
    # The service arrives as a warrant.served event (the form's own path is tested above), so the
    # hold starts at once however slow the machine is; the release is ordered at T0 + 60 s.
    held_case = case_id_of(ingest(live, detainer_of(held, "g-d1", "PG-1", t0 - timedelta(hours=1)),
                                  release_event("g-r1", "PG-1", t0), service_event("g-w1", "PG-1", t0 + timedelta(seconds=5),
                                                                                  badge="W-1024"))[0])
    assert custody_json(env, "case", "show", held_case)["status"] == "held"
    unverified_case = case_id_of(ingest(live, detainer_of(unverified, "g-d2", "PG-2", t0 - timedelta(hours=1), verified=False),
                                        release_event("g-r2", "PG-2", t0))[0])
    ice_token = {s["name"]: s["token"] for s in tomllib.loads((home / "senders.toml").read_text())["sender"]}["ice"]
    for event in (detainer_of(lifted, "g-d3", "PG-3", t0 - timedelta(hours=1)), lift_event("g-l3", "PG-3", now())):
        response = httpx.post(f"http://127.0.0.1:{live['http_port']}/events", json=event, timeout=30,
                              headers={"Authorization": f"Bearer {ice_token}"})
        assert response.status_code == 201, response.text
    lifted_case = response.json()["case_id"]

    wait_for(lambda: status_of(live, held_case) == "release_ordered", 120, "the release order", home)
    ingest(live, released_event("g-o1", "PG-1", now()))
    wait_for(lambda: (r := run_of(live, held_case)) and r.state.type.value == "COMPLETED", 120, "the held case's run to end", home)
    mine = (held_case, unverified_case, lifted_case)
    placeholders = ",".join("?" * len(mine))
    wait_for(lambda: db(live, f"select count(*) from outbox where case_id in ({placeholders}) and state = 'pending'", *mine) == [(0,)],
             120, "every notification of these cases to be delivered", home)
    sent_kinds = {kind for (kind,) in db(live, f"select kind from outbox where case_id in ({placeholders})", *mine)}
    assert {"release-order", "hold-started", "identity-review", "no-hold", "lifted", "released"} <= sent_kinds, sent_kinds

    # Every person of this module's cases, with what the custody database holds about them.
    others = {Person(name, str(dob), a_number) for name, dob, a_number in
              db(live, "select subject_name, subject_dob, a_number from detainers")} - set(PEOPLE.values())
    every_needle = {k: v for p in PEOPLE.values() for k, v in p.needles().items()}
    every_needle.update({n: what for p in others for n, what in ((p.name, "name"), (p.dob, "date of birth"), (p.a_number, "A-number"))})
    # A detainer typed into the record-detainer form passed through Prefect's own database as
    # the run's parameters; the run takes them out once recorded, so the API serves them no
    # more, but the bytes of the rewritten row may linger in Prefect's database files (SQLite
    # reuses the pages in its own time). Those people are searched for in what Prefect serves.
    typed = {n for (event_id,) in db(live, "select event_id from event_inbox where sender = 'prefect-ui' "
                                           "and type = 'detainer.received'")
             for p in others if db(live, "select 1 from detainers where event_id = ? and subject_name = ?", event_id, p.name)
             for n in (p.name, p.dob, p.a_number)}

    # The search can see what it looks for: the custody database itself holds all of it.
    if prefect_database_url(home):  # the PostgreSQL pass: both databases as text, to search like the files
        dump_database(database_url(home), home / "custody.db-dump.sql")
        dump_database(prefect_database_url(home), home / "prefect" / "prefect.db-dump.sql")
    custody_files = [p for p in home.iterdir() if p.name.startswith("custody.db")]
    assert {what.split()[0] for what in occurrences(held.needles(), custody_files)} >= {"name", "date", "A-number"}

    # The Prefect database, its write-ahead log and result storage, and the logs of the server,
    # the serve process and `custody up`: none of it.
    prefect_home = Path(Settings.from_env(dict(env)).prefect_env()["PREFECT_HOME"])
    files = files_under(prefect_home, home / "logs") + [home / "up.log"]
    assert any(p.name.startswith("prefect.db") for p in files) and any(p.name == "prefect-serve.log" for p in files), files
    assert occurrences({n: what for n, what in every_needle.items() if n not in typed}, files) == []

    # What the Prefect API serves: runs (names, parameters, tags, states), the officer's form inputs,
    # every artifact version, every log line, the deployments.
    texts = prefect_api_text()
    assert any(held_case in where for where in texts)
    assert in_texts(every_needle, texts) == []

    # The messages: the name only to ICE, the release desk and the officers; the A-number only
    # to ICE; the date of birth to nobody.
    received = live["receiver"].received
    by_group = {g: " ".join(m["title"] + "\n" + m["message"] for m in received if m["path"] == f"/{g}") for g in GROUPS}
    assert held.name in by_group["ice"] and held.name in by_group["release-desk"] and held.a_number in by_group["ice"]
    for person in [*PEOPLE.values(), *others]:
        for group, text in by_group.items():
            if group not in NAME_GROUPS:
                assert in_texts({n: "name" for n in ({person.name} | (person.name_needles() if person in PEOPLE.values() else set()))},
                                {group: text}) == []
            if group != "ice":
                assert in_texts({n: "A-number" for n in person.a_number_needles()}, {group: text}) == [], (group, person)
            assert in_texts({n: "date of birth" for n in person.dob_needles()}, {group: text}) == [], (group, person)
