"""A batch of events (a POST /events array) is decided event by event as if
each had come alone, in the order they happened, with the timers fired after
all of them, and made durable with one commit."""
import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event

from custody.service.core import Core, Sender
from custody.service.intake import ingest, ingest_many
from models.domain import Status
from tests.builders import detainer_event, iso, release_event, service_event, transfer_event, utc

OPERATOR = Sender("cli:test")
H, M = timedelta(hours=1), timedelta(minutes=1)
REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "events.jsonl"


def history():
    """The reference events, with a rejected one, a duplicate, a reused id and
    events that depend on earlier ones in the same batch."""
    t = utc(2026, 3, 11, 9)
    events = [json.loads(line) for line in REFERENCE.read_text().splitlines() if line.strip()]
    events += [
        detainer_event("x-d1", "BX", t, a_number="A555000111"),
        {**release_event("x-bad", "BX", t), "reason": "no such reason"},  # rejected, names the field
        release_event("x-r1", "BX", t),
        release_event("x-r1", "BX", t),  # the same event again: a duplicate
        {**release_event("x-r1", "BX", t), "reason": "court_order"},  # its id reused for another event
        service_event("x-s1", "BX", t, badge="NOBODY"),  # refused by the rules: not on the roster
        transfer_event("x-t1", "BX", t),
    ]
    return events


def test_a_batch_decides_each_event_as_if_it_came_alone_but_fires_timers_after_all_of_them(make_core, tmp_path):
    alone = make_core(url=f"sqlite:///{tmp_path / 'alone.db'}")
    batched = make_core(url=f"sqlite:///{tmp_path / 'batched.db'}")
    events = history()

    one_by_one = [ingest(alone, e, OPERATOR) for e in events]
    together = ingest_many(batched, events, OPERATOR)

    decided = lambda results: [(r.event_id, r.result, r.reason, r.case_id) for r in results]
    assert decided(together) == decided(one_by_one)
    assert {r.result for r in together} == {"accepted", "duplicate", "rejected"}
    statuses = lambda core: {(c.case_id, c.status, c.hold_authorized) for c in cases(core)}
    assert statuses(batched) == statuses(alone)
    # Alone, BX's release (09:00, read at 12:00) ordered its release at once, before the
    # pickup came; together, the pickup at 09:00 came before any timer could fire.
    bx = lambda core: [c for c in cases(core) if c.booking_number == "BX"][0]
    assert bx(alone).release_ordered_at is not None and bx(batched).release_ordered_at is None


def cases(core):
    with core.uow(read_only=True) as uow:
        return uow.cases.all()


def test_facts_that_arrive_together_count_in_the_order_they_happened_before_any_timer(make_core, clock):
    """A backlog after the jail system's outage: a release authorised 2 h ago and a
    valid service 5 minutes later, inside the 1-h grace by its own time, in one
    delivery and in either order: the hold stands, as it would have had each come at
    its time. Delivered apart, late, the release is ordered before the service comes
    (a release order is never withdrawn: the service is recorded as after it)."""
    now = clock.now()
    facts = lambda booking, n: [detainer_event(f"{booking}-d", booking, now - 30 * H, a_number=f"A55500{n:04d}"),
                                release_event(f"{booking}-r", booking, now - 2 * H),
                                service_event(f"{booking}-s", booking, now - 2 * H + 5 * M)]
    core = make_core()
    in_order, reversed_ = facts("B1", 1), facts("B2", 2)[::-1]
    assert [r.result for r in ingest_many(core, in_order + reversed_, OPERATOR)] == ["accepted"] * 6
    apart = facts("B3", 3)
    for event in apart:
        ingest_many(core, [event], OPERATOR)
    by_booking = {c.booking_number: c for c in cases(core)}
    for booking in ("B1", "B2"):
        case = by_booking[booking]
        assert case.status is Status.HELD and case.served_at == now - 2 * H + 5 * M, booking
        assert case.hold_started_at == case.served_at and case.deadline_at == now - 2 * H + 48 * H
    assert by_booking["B3"].status is Status.RELEASE_ORDERED and not by_booking["B3"].hold_authorized
    assert "no certified WSO served the warrant within 1h" in by_booking["B3"].release_order_reason


def test_facts_of_the_same_instant_count_in_the_same_order_whatever_the_order_of_lines(make_core, clock):
    """A release authorised and the person released in the same minute, with the
    service at that instant too: the authorisation comes first, the departure last,
    in any order of the lines."""
    now = clock.now()
    t0 = now - 2 * H
    facts = lambda booking, n: [
        detainer_event(f"{booking}-d", booking, now - 30 * H, a_number=f"A55510{n:04d}"),
        {"event_id": f"{booking}-o", "type": "inmate.released", "occurred_at": iso(t0), "booking_number": booking,
         "released_by": "Desk"},
        service_event(f"{booking}-s", booking, t0), release_event(f"{booking}-r", booking, t0)]
    core = make_core()
    ingest_many(core, facts("B1", 1) + facts("B2", 2)[::-1], OPERATOR)
    seen = {c.booking_number: (c.status, c.t0, c.hold_authorized, c.served_at, c.released_at) for c in cases(core)}
    assert seen["B1"] == seen["B2"] == (Status.RELEASED, t0, True, t0, t0)


def test_a_batch_is_one_commit_and_tells_the_followers_after_it(make_core, tmp_path):
    base = make_core()
    told = []
    core = Core(base.engine, base.policy, base.clock, on_commit=lambda case_id, what: told.append((case_id, what)))
    commits = []
    event.listen(core.engine, "commit", lambda conn: commits.append(len(told)))
    t = utc(2026, 3, 11, 9)
    events = [e for n in range(20) for e in (detainer_event(f"d{n}", f"B{n}", t, a_number=f"A{n:09d}"),
                                              release_event(f"r{n}", f"B{n}", t))]

    results = ingest_many(core, events, OPERATOR)

    assert [r.result for r in results] == ["accepted"] * 40
    assert commits == [0]  # one commit, before anyone was told
    assert len(told) == 40 and told[:2] == [(results[0].case_id, "detainer.received"), (results[1].case_id, "release.authorized")]
