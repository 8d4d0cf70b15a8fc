"""POST /events on a real `custody up` process, listening on loopback."""
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from tests.builders import detainer_event, lift_event, release_event
from tests.databases import database_url, demo_databases, has_tables
from tests.integration.cli import ROOT, custody, custody_env, custody_json
from tests.integration.test_cli import write_policy

pytestmark = pytest.mark.slow

TOKENS = {"jms": "jms-token-0123456789abcdefghij", "ice": "ice-token-0123456789abcdefghij"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def system(tmp_path):
    senders = tmp_path / "senders.toml"
    senders.write_text(
        f'[[sender]]\nname = "jms"\ntoken = "{TOKENS["jms"]}"\nevents = ["release.authorized", "inmate.released"]\n\n'
        f'[[sender]]\nname = "ice"\ntoken = "{TOKENS["ice"]}"\nevents = ["detainer.received", "detainer.lifted"]\n')
    # A compressed policy: T0 + 60 s deadline, release ordered 50 s before it.
    policy = write_policy(tmp_path, mode="detainer", limit="60s", service_grace="5s", reminder_marks=["55s"],
                          release_order_lead="50s", page_supervisors_before="10s")
    port = free_port()
    env = custody_env(tmp_path, CUSTODY_SENDERS=str(senders), CUSTODY_POLICY=str(policy), CUSTODY_HTTP_PORT=str(port))
    process = subprocess.Popen([sys.executable, "-m", "custody", "up", "--no-prefect"], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"custody up did not start:\n{process.stdout.read()}")
            time.sleep(0.2)
    yield base, env, process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise


def post(base, body, token=None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{base}/events", json=body, headers=headers, timeout=30, **kwargs)


def now():
    return datetime.now(timezone.utc).replace(microsecond=0)


def test_no_token_or_a_wrong_token_is_401_and_stores_nothing(system):
    base, env, _ = system
    event = detainer_event("d1", "B1", now() - timedelta(hours=1))
    assert post(base, event).status_code == 401
    wrong = post(base, event, token="not-a-token-0123456789abcdef")
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{base}/health", timeout=10).status_code == 401
    assert custody(env, "case", "show", "B1", check=False).returncode == 1
    assert post(base, event, token=TOKENS["ice"]).status_code == 201


def test_results_match_the_cli_contract(system):
    base, env, _ = system
    event = detainer_event("d1", "B1", now() - timedelta(hours=1))
    first = post(base, event, token=TOKENS["ice"])
    assert first.status_code == 201 and first.json()["result"] == "accepted" and first.json()["case_id"] == "2026-00001"
    dup = post(base, event, token=TOKENS["ice"])
    assert dup.status_code == 200 and dup.json()["result"] == "duplicate"
    clash = post(base, {**event, "booking_number": "B2"}, token=TOKENS["ice"])
    assert clash.status_code == 409 and clash.json()["reason"].startswith("event_id:")
    bad = post(base, {**event, "event_id": "d2", "occurred_at": "2026-03-11T10:00:00"}, token=TOKENS["ice"])
    assert bad.status_code == 422 and bad.json()["reason"].startswith("occurred_at:")
    # The jail system cannot lift a detainer.
    forbidden = post(base, lift_event("l1", "B1", now()), token=TOKENS["jms"])
    assert forbidden.status_code == 403 and "may not send 'detainer.lifted'" in forbidden.json()["reason"]
    assert custody_json(env, "case", "show", "B1")["status"] == "awaiting_release"


def test_an_array_gets_one_result_per_event(system):
    base, env, _ = system
    t = now() - timedelta(hours=1)
    batch = [detainer_event("d1", "B1", t, a_number="A000000001"), detainer_event("d2", "B2", t, a_number="A000000002"),
             {"event_id": "x", "type": "nonsense"}]
    response = post(base, batch, token=TOKENS["ice"])
    assert response.status_code == 200
    assert [r["result"] for r in response.json()["results"]] == ["accepted", "accepted", "rejected"]
    assert len(custody_json(env, "cases")) == 2


def test_malformed_bodies_get_a_4xx_with_a_reason(system):
    base, _, _ = system
    headers = {"Authorization": f"Bearer {TOKENS['ice']}", "Content-Type": "application/json"}
    for body, status in ((b"{not json", 400), (b"\xff\xfe", 400), (b"[]", 400), (b"[" * 100000, 400),
                         (b"x" * 1_100_000, 413)):
        response = httpx.post(f"{base}/events", content=body, headers=headers, timeout=30)
        assert response.status_code == status and response.json()["error"].startswith("body:"), body[:20]


def test_up_runs_the_backstop_which_orders_release_on_time(system):
    base, env, _ = system
    t0 = now()
    assert post(base, detainer_event("d1", "B1", t0 - timedelta(hours=1)), token=TOKENS["ice"]).status_code == 201
    assert post(base, release_event("r1", "B1", t0), token=TOKENS["jms"]).status_code == 201
    assert custody_json(env, "case", "show", "B1")["status"] == "held"
    due = t0 + timedelta(seconds=10)  # deadline T0 + 60 s, release ordered 50 s before it
    engine = create_engine(database_url(env["CUSTODY_HOME"]))
    try:  # polled in the database: a `custody case show` per look would cost a process start each
        while datetime.now(timezone.utc) < due + timedelta(seconds=15):
            with engine.connect() as conn:
                if conn.execute(text("select status from cases where booking_number = 'B1'")).scalar() == "release_ordered":
                    break
            time.sleep(0.5)
    finally:
        engine.dispose()
    view = custody_json(env, "case", "show", "B1")
    assert view["status"] == "release_ordered"
    ordered = datetime.fromisoformat(view["release_ordered_at"].replace("Z", "+00:00"))
    assert due <= ordered < due + timedelta(seconds=2), (due, ordered)
    assert [i["actor"] for i in view["timeline"] if i.get("action") == "release_ordered"] == ["backstop"]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_everything_cleanly(system, stop):
    _, _, process = system
    process.send_signal(stop)
    assert process.wait(timeout=20) == 0
    assert "custody stopped" in process.stdout.read()


def test_demo_feeds_a_simulated_jail_through_every_path(tmp_path):
    port = free_port()
    env = custody_env(tmp_path, CUSTODY_HTTP_PORT=str(port), CUSTODY_DEMO_SPEED="10", **demo_databases(tmp_path))
    process = subprocess.Popen([sys.executable, "-m", "custody", "up", "--demo", "--no-prefect"], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    demo_env = custody_env(tmp_path / "demo", CUSTODY_POLICY=str(tmp_path / "demo" / "policy.toml"))
    want = {"DEMO-001": "release_authorized", "DEMO-002": "transferred", "DEMO-003": "released", "DEMO-004": "closed",
            "DEMO-005": "closed", "DEMO-006": "closed", "DEMO-007": "awaiting_release", "DEMO-008": "held"}
    demo_db, engine, got = database_url(tmp_path / "demo"), None, {}
    try:
        # DEMO-003's release is the script's last fact (82 s in at ten times the speed).
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            time.sleep(2)
            if engine is None:
                if not has_tables(demo_db):
                    continue
                engine = create_engine(demo_db)
            # Read straight from the demo's database: a `custody case show` per case per look
            # would cost a process start each (~0.7 CPU-s).
            try:
                with engine.connect() as conn:
                    got = dict(conn.execute(text("select booking_number, status from cases")).all())
            except DBAPIError:  # the demo is still making its tables
                continue
            if got == want:
                break
        assert got == want
        # ... and the demo's own command line shows them so.
        assert custody_json(demo_env, "case", "show", "DEMO-007")["status"] == "awaiting_release"
    finally:
        if engine is not None:
            engine.dispose()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert not has_tables(database_url(tmp_path))  # the demo never touches the real database


def test_the_openapi_schema_describes_the_contract_behind_a_token(system):
    base, _, _ = system
    assert httpx.get(f"{base}/openapi.json", timeout=10).status_code == 401
    schema = httpx.get(f"{base}/openapi.json", headers={"Authorization": f"Bearer {TOKENS['ice']}"}, timeout=10).json()
    post = schema["paths"]["/events"]["post"]
    assert {"201", "200", "401", "403", "409", "422"} <= set(post["responses"])
    body = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    tags = set(body[0]["discriminator"]["mapping"])
    assert {"detainer.received", "warrant.served", "notice.acknowledged"} <= tags
    assert "DetainerReceived" in schema["components"]["schemas"] and schema["security"] == [{"bearer": []}]


def test_the_demo_resumes_on_a_second_start_and_reset_starts_it_clean(tmp_path):
    """A restart finds the script played and goes on (no event refused as a
    re-used id); `--reset` empties the demo and the script plays again."""
    extra = {k: v for k, v in demo_databases(tmp_path).items() if k == "CUSTODY_DEMO_DATABASE_URL"}  # no Prefect here
    env = custody_env(tmp_path, CUSTODY_HTTP_PORT=str(free_port()), CUSTODY_DEMO_SPEED="10", **extra)

    def start(*args: str, until: str) -> list[str]:
        """custody up --demo until a line containing `until`; every line it printed."""
        process = subprocess.Popen([sys.executable, "-m", "custody", "up", "--demo", "--no-prefect", *args], env=env, cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        try:
            deadline = time.monotonic() + 180
            for line in process.stdout:
                lines.append(line)
                if until in line or time.monotonic() > deadline:
                    break
        finally:
            process.send_signal(signal.SIGINT)
            rest, _ = process.communicate(timeout=60)
            lines += rest.splitlines(keepends=True)
        assert any(until in line for line in lines), "".join(lines[-40:])
        return lines

    first = start(until="demo-8-s: ")  # the script's last event
    assert any("demo-1-d: accepted" in line for line in first)
    again = start(until="SIM-D")  # the generated jail's first event comes after the script's place
    text_ = "".join(again)
    assert "demo: resumed as it was left" in text_
    assert "demo-1-d" not in text_ and "already used" not in text_
    if extra:  # PostgreSQL: the demo's database is not ours to empty, and --reset says so
        refused = subprocess.run([sys.executable, "-m", "custody", "up", "--demo", "--no-prefect", "--reset"], env=env, cwd=ROOT,
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and "CUSTODY_DEMO_DATABASE_URL: --reset clears the demo's own files only" in refused.stderr
        return
    clean = start("--reset", until="demo-1-d: ")
    text_ = "".join(clean)
    assert "demo reset: " in text_ and "demo-1-d: accepted" in text_ and "already used" not in text_
