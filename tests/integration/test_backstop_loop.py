"""The backstop loop of `custody up`, one pass at a time, on a real database,
with clocks that move while a pass runs."""
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from custody.loops import HORIZON, PREPARE, Backstop
from custody.service.core import Core, Sender
from custody.service.intake import ingest
from custody.store import schema as t
from models.clock import FixedClock
from tests.builders import detainer_event, policy, release_event, utc

T0 = utc(2026, 3, 1, 12)
ORDER = T0 + timedelta(hours=46)  # the first release order: 2 h before the 48 h deadline


def holds(make_core, clock, *offsets):
    """Holds whose release orders fall at ORDER + each offset."""
    core = make_core(policy(mode="detainer", reminder_marks=["1h"]))  # first due: the release order
    clock.set(T0 + timedelta(minutes=1))
    for n, offset in enumerate(offsets):
        ingest(core, detainer_event(f"d{n}", f"B{n}", T0 - timedelta(hours=2), a_number=f"A00000000{n}"), Sender("test"))
        assert ingest(core, release_event(f"r{n}", f"B{n}", T0 + offset), Sender("test")).outcome.startswith("hold_started")
    return core


def ordered_at(core):
    with core.engine.connect() as conn:
        return dict(conn.execute(select(t.cases.c.case_id, t.cases.c.release_ordered_at)).all())


class RealTimeClock:
    """Real time, starting from a chosen instant."""

    def __init__(self, start):
        self.start, self.began = start, time.monotonic()

    def now(self):
        return self.start + timedelta(seconds=time.monotonic() - self.began)


def test_a_release_order_falling_due_during_a_pass_is_given_by_the_next_pass_without_a_pause(make_core, clock):
    core = holds(make_core, clock, timedelta(0), timedelta(milliseconds=2))
    moving = FixedClock(ORDER)
    event.listen(core.engine, "commit", lambda conn: moving.advance(timedelta(milliseconds=10)))  # each write takes 10 ms
    backstop = Backstop(Core(core.engine, core.policy, moving))

    wait = backstop.one_pass()  # lists what is due at ORDER: only the first case

    assert [a.case_id for a in backstop.last_report.actions] == ["2026-00001"]
    assert wait == timedelta(0)  # the second fell due at +2 ms, while the pass was writing
    backstop.one_pass()
    assert [a.case_id for a in backstop.last_report.actions] == ["2026-00002"]
    assert all(at is not None for at in ordered_at(core).values())


def test_woken_just_before_a_due_instant_the_backstop_decides_at_the_instant_never_before(make_core, clock):
    core = holds(make_core, clock, timedelta(0))
    backstop = Backstop(Core(core.engine, core.policy, FixedClock(ORDER - timedelta(seconds=5))), reread=timedelta(minutes=1))
    assert backstop.one_pass() == timedelta(seconds=5) - PREPARE  # wakes a little before the instant
    backstop.core = Core(core.engine, core.policy, RealTimeClock(ORDER - PREPARE / 2))

    backstop.one_pass()

    assert backstop.last_report.started_at == ORDER  # listed ahead, decided at the instant
    assert [a.action for a in backstop.last_report.actions][0] == "release_ordered"
    assert ordered_at(core)["2026-00001"] >= ORDER


def test_a_clock_that_has_not_reached_the_instant_gets_no_order(make_core, clock):
    core = holds(make_core, clock, timedelta(0))
    stuck = FixedClock(ORDER - timedelta(seconds=5))
    backstop = Backstop(Core(core.engine, core.policy, stuck))
    backstop.one_pass()
    stuck.set(ORDER - PREPARE / 2)

    backstop.one_pass()

    assert backstop.last_report.actions == []
    assert ordered_at(core)["2026-00001"] is None


def test_orders_falling_due_moments_apart_are_each_decided_at_their_instant_and_committed_together(make_core, clock):
    apart = HORIZON / 2
    core = holds(make_core, clock, timedelta(0), apart)
    backstop = Backstop(Core(core.engine, core.policy, FixedClock(ORDER - timedelta(seconds=5))))
    backstop.one_pass()
    commits = []
    event.listen(core.engine, "commit", lambda conn: commits.append(1))
    backstop.core = Core(core.engine, core.policy, RealTimeClock(ORDER - PREPARE / 2))

    backstop.one_pass()

    assert [a.case_id for a in backstop.last_report.actions if a.action == "release_ordered"] == ["2026-00001", "2026-00002"]
    assert len(commits) == 1
    at = ordered_at(core)
    assert at["2026-00001"] >= ORDER and at["2026-00002"] >= ORDER + apart  # each at its own instant, never before


def test_a_hold_written_by_another_process_is_ordered_at_its_instant_without_a_poke(make_core, clock):
    """The officer's form is recorded by a flow-run process, `custody ingest` by
    another: neither pokes the backstop of `custody up`, which must still order
    the release at its instant, not at its next one-minute pass."""
    import threading

    core = make_core(policy(mode="detainer", reminder_marks=["1h"]))
    backstop = Backstop(Core(core.engine, core.policy, RealTimeClock(ORDER - timedelta(seconds=2))),
                        reread=timedelta(milliseconds=300))
    assert backstop.interval == timedelta(minutes=1)
    thread = threading.Thread(target=backstop.run, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)  # the backstop has read that nothing is due, and sleeps
        clock.set(T0 + timedelta(minutes=1))
        ingest(core, detainer_event("d0", "B0", T0 - timedelta(hours=2), a_number="A000000000"), Sender("other process"))
        assert ingest(core, release_event("r0", "B0", T0), Sender("other process")).outcome.startswith("hold_started")
        deadline = time.monotonic() + 5
        while ordered_at(core)["2026-00001"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        backstop.stop()
        thread.join(timeout=5)
    at = ordered_at(core)["2026-00001"]
    assert at is not None, "the release was not ordered: the backstop slept through a hold it was not told of"
    assert ORDER <= at < ORDER + timedelta(milliseconds=200)


def test_a_lock_held_past_the_wait_at_a_due_instant_gives_way_to_a_full_pass_at_once(make_core, clock, db_url):
    """Another writer holds the database when a release order falls due: the
    prepared pass gives up without an error (an error would make the loop wait
    its 5 s backoff); the full pass and its short retries order the release as
    soon as the lock is gone."""
    from custody.store.db import make_engine
    from tests.integration.test_busy_database import another_writer_holds_the_lock

    if not db_url.startswith("sqlite"):
        pytest.skip("on PostgreSQL the backstop's engine waits for a lock without limit and skips the case rows "
                    "another writer locks; SQLite's writer lock gives up after its wait (30 s)")
    core = holds(make_core, clock, timedelta(0))
    impatient = make_engine(db_url, lock_timeout=0.1)
    try:
        backstop = Backstop(Core(impatient, core.policy, FixedClock(ORDER - timedelta(seconds=5))))
        backstop.one_pass()  # prepared for ORDER
        backstop.core = Core(impatient, core.policy, RealTimeClock(ORDER - PREPARE / 2))
        with another_writer_holds_the_lock(db_url):
            wait = backstop.one_pass()  # raised OperationalError before: the loop's 5 s backoff
        assert wait is not None and wait <= backstop.error_backoff / 25
        assert ordered_at(core)["2026-00001"] is None
        backstop.one_pass()
        assert ordered_at(core)["2026-00001"] is not None
    finally:
        impatient.dispose()


def test_cases_whose_writes_lose_every_attempt_are_reported_and_fail_their_hold_step(make_core, clock, db_url, monkeypatch):
    """When other writers hold the database through every attempt, the pass
    says which cases it could not advance (`custody sweep` exits 1 naming them)
    and a hold step fails, so its failure alerts the supervisors, instead of
    logging "nothing due"; the backstop's next pass orders the release."""
    import tasks.case_tasks
    from custody.service.backstop import SweepReport, advance_cases
    from custody.store.db import make_engine
    from tests.integration.test_busy_database import another_writer_holds_the_lock

    core = holds(make_core, clock, timedelta(0))
    clock.set(ORDER)
    impatient = Core(make_engine(db_url, lock_timeout=0.1), core.policy, clock)

    @contextmanager
    def another_writer_holds_the_case():
        if core.engine.dialect.name == "sqlite":  # one writer at a time: the whole database
            with another_writer_holds_the_lock(db_url):
                yield
            return
        with core.engine.connect() as conn:  # PostgreSQL: the case's row, as a sweep holding it would
            conn.execute(select(t.cases.c.case_id).where(t.cases.c.case_id == "2026-00001").with_for_update())
            try:
                yield
            finally:
                conn.rollback()

    try:
        report = SweepReport(clock.now())
        with another_writer_holds_the_case():
            advance_cases(impatient, [("2026-00001", ORDER)], "test", report, skip_locked=False)
            assert report.actions == [] and report.not_advanced == ["2026-00001"]
            assert report.as_dict()["not_advanced"] == ["2026-00001"]
            with pytest.raises(RuntimeError, match="2026-00001: every attempt to write it failed"):
                tasks.case_tasks.advance_case.fn(impatient, "2026-00001", "hold-step:release-order")
            if core.engine.dialect.name == "sqlite":  # (PostgreSQL's sweep skips a row another writer holds)
                import argparse
                import io

                from custody.cli import cmd_sweep
                said = io.StringIO()
                assert cmd_sweep(impatient, argparse.Namespace(json=False), said) == 1
                assert "NOT ADVANCED (every attempt failed: other writers held the database, or it failed; run again): 2026-00001" in said.getvalue()
        assert ordered_at(core)["2026-00001"] is None
        assert [a["action"] for a in tasks.case_tasks.advance_case.fn(impatient, "2026-00001", "hold-step:release-order")] == ["release_ordered"]
    finally:
        impatient.engine.dispose()
