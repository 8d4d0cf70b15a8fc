"""Two backstops on one database (two machines, or a sweep deployment beside
`custody up`): each release is ordered exactly once. On PostgreSQL the two
truly run at once and share the due cases (each skips a case the other holds);
on SQLite one writer at a time takes turns with the other."""
import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, text

from custody.service.core import Core, Sender
from custody.service.intake import ingest
from custody.store import schema as t
from custody.store.db import make_engine, migrate
from models.clock import FixedClock
from tests.builders import detainer_event, policy, release_event
from tests.databases import database_url
from tests.integration.cli import ROOT, custody_env
from tests.integration.test_cli import write_policy

CASES = 120


def test_two_sweep_processes_at_once_order_each_release_once(tmp_path):
    pol_path = write_policy(tmp_path, mode="detainer")
    env = custody_env(tmp_path, CUSTODY_POLICY=str(pol_path))
    engine = make_engine(database_url(tmp_path))
    migrate(engine)
    real_now = datetime.now(timezone.utc)
    t0 = real_now - timedelta(hours=47)  # release-order time (T0 + 46 h) is an hour ago
    core = Core(engine, policy(mode="detainer"), FixedClock(t0 + timedelta(minutes=1)))
    for n in range(CASES):
        booking = f"B{n:04d}"
        ingest(core, detainer_event(f"d{n}", booking, t0 - timedelta(hours=2), a_number=f"A{n:09d}"), Sender("setup"))
        assert ingest(core, release_event(f"r{n}", booking, t0), Sender("setup")).result == "accepted"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).where(t.cases.c.status == "held")).scalar_one() == CASES

    gate = start_gate(engine)
    sweeps = [subprocess.Popen([sys.executable, "-m", "custody", "sweep", "--json"], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    if gate is not None:
        open_gate(gate, engine, waiting=2)
    outputs = [s.communicate(timeout=120) for s in sweeps]
    assert [s.returncode for s in sweeps] == [0, 0], outputs
    done = [sum(a["action"] == "release_ordered" for a in json.loads(out)["actions"]) for out, _ in outputs]
    print("release orders per sweep process:", done)
    assert sum(done) == CASES
    if gate is not None:
        assert min(done) > 0, "both sweeps started together; each should have ordered some releases"

    with engine.connect() as conn:
        orders = conn.execute(select(t.audit.c.case_id, func.count()).where(t.audit.c.action == "release_ordered")
                              .group_by(t.audit.c.case_id)).all()
        outbox = conn.execute(select(func.count()).where(t.outbox.c.kind == "release-order")).scalar_one()
        statuses = set(conn.execute(select(t.cases.c.status)).scalars())
    assert len(orders) == CASES and {count for _, count in orders} == {1}
    assert outbox == CASES * 3
    assert statuses == {"release_ordered"}


def test_two_sweeps_with_the_same_due_list_racing_in_threads_order_each_release_once(tmp_path, monkeypatch):
    import threading

    import custody.service.backstop
    from custody.service.backstop import SweepReport, advance_cases, due_cases

    # Small batches, so that on PostgreSQL the second sweep finds batches the
    # first does not hold yet (a batch it holds is skipped whole).
    monkeypatch.setattr(custody.service.backstop, "SWEEP_BATCH", 5)

    url = database_url(tmp_path)
    engine = make_engine(url)
    migrate(engine)
    t0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    pol = policy(mode="detainer")
    setup = Core(engine, pol, FixedClock(t0 + timedelta(minutes=1)))
    for n in range(60):
        ingest(setup, detainer_event(f"d{n}", f"B{n}", t0 - timedelta(hours=2), a_number=f"A{n:09d}"), Sender("setup"))
        ingest(setup, release_event(f"r{n}", f"B{n}", t0), Sender("setup"))

    clock = FixedClock(t0 + timedelta(hours=46))
    cores = [Core(make_engine(url), pol, clock) for _ in range(2)]
    # Both passes read the same due list before either acts on it.
    due = [due_cases(c, clock.now()) for c in cores]
    assert len(due[0]) == len(due[1]) == 60
    reports = [SweepReport(clock.now()) for _ in cores]
    barrier = threading.Barrier(2)

    def run(i):
        barrier.wait(timeout=30)
        advance_cases(cores[i], due[i], f"sweep-{i}", reports[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    ordered = [a.case_id for r in reports for a in r.actions if a.action == "release_ordered"]
    split = [sum(a.action == "release_ordered" for a in r.actions) for r in reports]
    print("release orders per thread:", split)
    assert len(ordered) == 60 and len(set(ordered)) == 60
    if engine.dialect.name == "postgresql":
        assert min(split) > 0, "on PostgreSQL the two sweeps share the work"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).where(t.audit.c.action == "release_ordered")).scalar_one() == 60
        assert conn.execute(select(func.count()).where(t.outbox.c.kind == "release-order")).scalar_one() == 180


def start_gate(engine):
    """PostgreSQL: hold the cases table so that both sweep processes queue on it
    and start at the same instant (process start-up alone would otherwise let
    one finish before the other begins). None on SQLite."""
    if engine.dialect.name != "postgresql":
        return None
    conn = engine.connect()
    conn.begin()
    conn.execute(text("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE"))
    return conn


def open_gate(conn, engine, waiting: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with engine.connect() as probe:
        while probe.execute(text(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'cases' AND NOT l.granted "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())")).scalar_one() < waiting:
            assert time.monotonic() < deadline, "the sweeps never reached the cases table"
            probe.rollback()
            time.sleep(0.05)
    conn.commit()
    conn.close()
