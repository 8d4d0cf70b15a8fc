"""The audit trail is tamper-evident: an entry changed or removed behind the
software's back is found, and the first broken link is named."""
import json
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from custody.service.core import Core, Sender
from custody.service.intake import ingest
from custody.store.db import make_engine, migrate
from models.clock import FixedClock
from tests.builders import detainer_event, policy, release_event, service_event, utc
from tests.databases import allow_audit_rewrite, allow_head_rewrite, database_url
from tests.integration.cli import custody, custody_env


def history(core, clock):
    t0 = clock.now() - timedelta(minutes=10)
    for event in (detainer_event("d1", "B1", t0 - timedelta(hours=1)), release_event("r1", "B1", t0),
                  service_event("s1", "B1", t0 + timedelta(minutes=1)),
                  detainer_event("d2", "B2", t0, a_number="A000000002")):
        assert ingest(core, event, Sender("test")).result == "accepted"


def broken(core, case_id=None):
    with core.uow(read_only=True) as uow:
        return uow.audit.broken_links(case_id)


def test_an_untouched_trail_verifies(core, clock):
    history(core, clock)
    assert broken(core) == []


def test_an_edited_entry_is_caught_at_that_entry(core, clock):
    history(core, clock)
    with core.engine.begin() as conn:  # someone with database access, behind the software's back
        allow_audit_rewrite(conn, "UPDATE")
        target = conn.execute(text("SELECT id, seq FROM audit_trail WHERE case_id = '2026-00001' AND action = 'hold_started'")).one()
        conn.execute(text("UPDATE audit_trail SET reason = 'held on a verbal order' WHERE id = :id"), {"id": target.id})
    [found] = broken(core)
    assert (found["chain"], found["seq"], found["id"]) == ("2026-00001", target.seq, target.id)
    assert "content" in found["problem"]
    assert broken(core, "2026-00002") == []


def test_a_removed_entry_is_caught(core, clock):
    history(core, clock)
    with core.engine.begin() as conn:
        allow_audit_rewrite(conn, "DELETE")
        conn.execute(text("DELETE FROM audit_trail WHERE case_id = '2026-00001' AND seq = 2"))
    [found] = broken(core)
    assert found["chain"] == "2026-00001" and found["seq"] == 2 and "missing" in found["problem"]


def newest(core, chain="2026-00001") -> int:
    with core.engine.connect() as conn:
        return conn.execute(text("SELECT max(seq) FROM audit_trail WHERE chain = :c"), {"c": chain}).scalar_one()


def test_removing_the_newest_entry_is_caught_as_a_missing_tail(core, clock):
    history(core, clock)
    last = newest(core)
    with core.engine.begin() as conn:
        allow_audit_rewrite(conn, "DELETE")
        conn.execute(text("DELETE FROM audit_trail WHERE chain = '2026-00001' AND seq = :s"), {"s": last})
    [found] = broken(core)
    assert (found["chain"], found["seq"]) == ("2026-00001", last)
    assert found["problem"] == f"entry {last} of {last} missing at the end of the chain (its newest entries were removed)"
    assert broken(core, "2026-00002") == []


def test_truncating_a_chain_or_removing_all_of_it_is_caught(core, clock):
    history(core, clock)
    last = newest(core)
    with core.engine.begin() as conn:
        allow_audit_rewrite(conn, "DELETE")
        conn.execute(text("DELETE FROM audit_trail WHERE chain = '2026-00001' AND seq > 1"))
        conn.execute(text("DELETE FROM audit_trail WHERE chain = '2026-00002'"))
    found = {b["chain"]: b for b in broken(core)}
    assert found["2026-00001"]["problem"].startswith(f"entries 2 to {last} of {last} missing at the end")
    assert found["2026-00002"]["seq"] == 1 and "missing at the end of the chain" in found["2026-00002"]["problem"]


def test_reordering_entries_is_caught(core, clock):
    history(core, clock)
    with core.engine.begin() as conn:
        allow_audit_rewrite(conn, "UPDATE")
        conn.execute(text("UPDATE audit_trail SET seq = -seq WHERE chain = '2026-00001' AND seq IN (2, 3)"))
        conn.execute(text("UPDATE audit_trail SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END WHERE chain = '2026-00001' AND seq < 0"))
    [found] = broken(core)
    assert found["chain"] == "2026-00001" and found["seq"] == 2 and "link" in found["problem"]


def test_the_heads_move_only_forward_and_a_removed_head_is_caught(core, clock):
    history(core, clock)
    for statement in ("DELETE FROM audit_heads WHERE chain = '2026-00001'",
                      "UPDATE audit_heads SET seq = seq - 1 WHERE chain = '2026-00001'"):
        with pytest.raises(DBAPIError, match="audit_heads only move forward"):
            with core.engine.begin() as conn:
                conn.execute(text(statement))
    # Behind the database's own guards, the tail and its head both removed: the chain has no head left.
    last = newest(core)
    with core.engine.begin() as conn:
        allow_audit_rewrite(conn, "DELETE")
        allow_head_rewrite(conn)
        conn.execute(text("DELETE FROM audit_trail WHERE chain = '2026-00001' AND seq = :s"), {"s": last})
        conn.execute(text("DELETE FROM audit_heads WHERE chain = '2026-00001'"))
    [found] = broken(core)
    assert found["chain"] == "2026-00001" and "recorded head is missing" in found["problem"]


def test_custody_audit_verify_reports_the_first_broken_link(tmp_path):
    env = custody_env(tmp_path)
    custody(env, "ingest", "-", stdin=json.dumps(detainer_event("d1", "B1", utc(2026, 3, 1, 9))) + "\n")
    assert "every link intact" in custody(env, "audit", "verify").stdout
    engine = make_engine(database_url(tmp_path))
    with engine.begin() as conn:
        allow_audit_rewrite(conn, "UPDATE")
        conn.execute(text("UPDATE audit_trail SET actor = 'someone else' WHERE chain = '2026-00001' AND seq = 1"))
    result = custody(env, "audit", "verify", check=False)
    assert result.returncode == 1 and "BROKEN: chain 2026-00001 at entry 1" in result.stdout
    with engine.begin() as conn:
        allow_audit_rewrite(conn, "DELETE")
        conn.execute(text("DELETE FROM audit_trail WHERE chain = '2026-00001'"))
    result = custody(env, "audit", "verify", check=False)
    assert result.returncode == 1 and result.stdout.startswith("BROKEN: chain 2026-00001 at entry 1: entr")
    assert "missing at the end of the chain" in result.stdout
    engine.dispose()


def test_entries_written_before_the_chain_existed_are_chained_on_upgrade(db_url):
    engine = make_engine(db_url)
    migrate(engine, "0004")
    with engine.begin() as conn:
        for n, action in enumerate(("case_opened", "release_authorized", "hold_started")):
            conn.execute(text(
                "INSERT INTO audit_trail (case_id, at, actor, action, status_before, status_after, reason) "
                "VALUES ('2026-00001', :at, 'old', :action, NULL, NULL, 'from an older release')"),
                {"at": f"2026-03-01 1{n}:00:00.000000", "action": action})
    migrate(engine)
    core = Core(engine, policy(), FixedClock(utc(2026, 3, 2)))
    assert broken(core) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT seq FROM audit_trail ORDER BY id")).scalars().all() == [1, 2, 3]


def test_concurrent_writers_of_the_system_chain_take_turns(make_core, db_url):
    """Entries of no case (roster loads, operations alerts) share the `system`
    chain. Writers racing on it must neither fork it nor fail: each entry gets
    the next link, whatever the database (on PostgreSQL they truly run at once)."""
    import threading

    from custody.service.alerts import raise_operations_alert

    core = make_core(roster=None)
    writers, each = 4, 15
    cores = [Core(make_engine(db_url), core.policy, core.clock) for _ in range(writers)]
    barrier = threading.Barrier(writers)
    failures = []

    def write(i):
        barrier.wait(timeout=30)
        try:
            for n in range(each):
                raise_operations_alert(cores[i], what="failed", subject=f"writer {i} #{n}", detail="test", dedupe=f"{i}-{n}")
        except Exception as exc:  # reported below: a writer must never fail on a race
            failures.append(repr(exc))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"
    for c in cores:
        c.engine.dispose()
    assert failures == []
    with core.engine.connect() as conn:
        seqs = conn.execute(text("SELECT seq FROM audit_trail WHERE chain = 'system' ORDER BY seq")).scalars().all()
    assert seqs == list(range(1, writers * each + 1))
    assert broken(core) == []
