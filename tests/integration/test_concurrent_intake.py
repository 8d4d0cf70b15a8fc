"""Intake from several senders at once (the HTTP endpoint serves requests in
parallel, and several `custody up` may share one PostgreSQL database). On
SQLite writers take turns; on PostgreSQL they truly overlap, and what must stay
serial is serialised: rule 11's one active case per person, and the events of
one booking applied one after another."""
import threading
from datetime import timedelta

from sqlalchemy import func, select

from custody.service.core import Core, Sender
from custody.service.intake import ingest
from custody.store import schema as t
from custody.store.db import make_engine
from tests.builders import detainer_event, release_event

WRITERS = 4


def at_once(make_core, db_url, work) -> list[str]:
    """Run work(core, i) in WRITERS threads started together, each with its own
    engine (as separate processes would have); returns what any of them raised."""
    base = make_core(roster=None)
    cores = [Core(make_engine(db_url), base.policy, base.clock) for _ in range(WRITERS)]
    barrier = threading.Barrier(WRITERS)
    failures: list[str] = []

    def run(i):
        barrier.wait(timeout=30)
        try:
            work(cores[i], i)
        except Exception as exc:  # reported by the caller: no writer may fail on a race
            failures.append(repr(exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if any(thread.is_alive() for thread in threads):
        failures.append("a writer hung")
    for core in cores:
        core.engine.dispose()
    return failures


def test_one_person_detained_at_several_bookings_at_once_gets_one_case(make_core, db_url, clock):
    at = clock.now() - timedelta(hours=1)

    def work(core, i):
        for round_ in range(5):
            result = ingest(core, detainer_event(f"d{i}-{round_}", f"B{i}", at, a_number="A123456789",
                                                 event_number=f"EV{i}-{round_}"), Sender("ice"))
            assert result.result == "accepted", result

    assert at_once(make_core, db_url, work) == []
    engine = make_engine(db_url)
    with engine.connect() as conn:
        cases = conn.execute(select(func.count()).select_from(t.cases).where(t.cases.c.a_number == "A123456789")).scalar_one()
        detainers = conn.execute(select(func.count()).select_from(t.detainers)).scalar_one()
    engine.dispose()
    assert (cases, detainers) == (1, WRITERS * 5)


def test_events_of_one_booking_from_several_senders_are_each_applied_once(make_core, db_url, clock):
    t0 = clock.now() - timedelta(hours=2)
    base = make_core(roster=None)
    assert ingest(base, detainer_event("d0", "B1", t0 - timedelta(hours=1)), Sender("ice")).result == "accepted"

    def work(core, i):
        # Each writer reports the release at its own instant; T0 is the earliest.
        for round_ in range(5):
            result = ingest(core, release_event(f"r{i}-{round_}", "B1", t0 + timedelta(minutes=i * 5 + round_)),
                            Sender("jms"))
            assert result.result == "accepted", result

    assert at_once(make_core, db_url, work) == []
    with base.uow(read_only=True) as uow:
        [case] = uow.cases.all()
        audit = uow.audit.for_case(case.case_id)
        assert uow.audit.broken_links(case.case_id) == []
    assert case.t0 == t0 and case.deadline_at == t0 + timedelta(hours=48)
    assert sum(a["action"] == "release_authorized" for a in audit) == 1
    assert len({a["seq"] for a in audit}) == len(audit)
