"""The custody board (republished every minute, every version kept by
Prefect) lists the holds that need attention first and is bounded; the cases
waiting for release are counted, not listed."""
from datetime import timedelta

import custody.store.repositories.base as store
from custody.adapters.prefect.artifacts import board_description, board_rows
from custody.service.backstop import sweep
from custody.service.core import Sender
from custody.service.intake import ingest, ingest_many
from custody.service.views import open_cases
from tests.builders import detainer_event, policy, release_event, service_event, utc

T0 = utc(2026, 3, 1, 12)


def jail(make_core, clock, waiting=4, held=3):
    core = make_core(policy(mode="detainer"))
    clock.set(T0 + timedelta(hours=2))
    for n in range(waiting + held):
        ingest(core, detainer_event(f"d{n}", f"B{n}", T0 - timedelta(hours=5), a_number=f"A{n:09d}"), Sender("test"))
    for n in range(held):  # released later and later: their deadlines come in this order
        ingest(core, release_event(f"r{n}", f"B{n}", T0 + timedelta(minutes=10 * (held - n))), Sender("test"))
    return core


def test_the_board_shows_the_soonest_deadlines_first_and_counts_the_rest(make_core, clock):
    core = jail(make_core, clock)
    with core.uow(read_only=True) as uow:
        views = open_cases(uow, core.policy, clock.now(), limit=2)
        counts = uow.cases.open_counts()

    assert [v["booking_number"] for v in views] == ["B2", "B1"]  # the two soonest deadlines
    assert counts == {"held": 3, "awaiting_release": 4}
    assert board_description(views, counts, clock.now().isoformat(), core.policy).startswith(
        "Open cases, releases ordered first, then soonest deadline: the 2 soonest of 7 (4 awaiting release, 3 held)")


def test_without_a_limit_every_open_case_is_listed_those_without_a_clock_last(make_core, clock, monkeypatch):
    monkeypatch.setattr(store, "IN_CHUNK", 2)  # notices are looked up a few cases at a time
    core = jail(make_core, clock)
    with core.uow(read_only=True) as uow:
        views = open_cases(uow, core.policy, clock.now())

    assert [v["booking_number"] for v in views][:3] == ["B2", "B1", "B0"]
    assert {v["booking_number"] for v in views[3:]} == {"B3", "B4", "B5", "B6"}
    assert all("hold-started" in v["unacknowledged_ice_notices"] for v in views[:3])  # found across chunks


def test_a_release_ordered_without_a_hold_heads_the_board_whatever_its_deadline_and_says_how_late(make_core, clock):
    core = make_core(policy())  # wso mode: a release authorised and never served is ordered an hour later
    t0 = T0 + timedelta(hours=2)
    clock.set(T0)
    for n in range(3):  # held on timely services, deadlines sooner than the unserved case's
        released = T0 - timedelta(hours=n)
        results = ingest_many(core, [detainer_event(f"d{n}", f"H{n}", T0 - timedelta(hours=5), a_number=f"A{n:09d}"),
                                     release_event(f"r{n}", f"H{n}", released),
                                     service_event(f"s{n}", f"H{n}", released + timedelta(minutes=5))], Sender("test"))
        assert [r.result for r in results] == ["accepted"] * 3
    clock.set(t0)
    ingest(core, detainer_event("dx", "X1", T0 - timedelta(hours=5), a_number="A999999999"), Sender("test"))
    ingest(core, release_event("rx", "X1", t0), Sender("test"))
    clock.set(t0 + timedelta(hours=3))
    sweep(core)  # the window closed long ago: release ordered, not confirmed
    with core.uow(read_only=True) as uow:
        views = open_cases(uow, core.policy, clock.now(), limit=2, orders_first=True)
        counts = uow.cases.open_counts()
        by_deadline = open_cases(uow, core.policy, clock.now(), limit=2)
    assert "X1" not in [v["booking_number"] for v in by_deadline]  # by its deadline alone it would not be shown
    assert views[0]["booking_number"] == "X1" and views[0]["status"] == "release_ordered"
    assert views[0]["minutes_past_due"] == 90  # three hours after T0, due at T0 + 1 h + 30 min
    description = board_description(views, counts, clock.now().isoformat(), core.policy)
    assert description.endswith("1 OVERDUE: held past the time release was due.")
    [row, _] = board_rows(views, core.policy)
    assert (row["!"], row["booking"], row["status"], row["past release due"]) == ("OVERDUE", "X1", "release ordered", "1h30m")
    assert row["served by"] == "" and row["ICE notices not acknowledged"] == "release-notice, release-order"  # empty is empty


def test_a_hold_past_its_deadline_is_marked_overdue_and_a_quiet_row_has_empty_cells(make_core, clock):
    core = make_core(policy())
    clock.set(T0)
    ingest_many(core, [detainer_event("d1", "H1", T0 - timedelta(hours=5)), release_event("r1", "H1", T0),
                       service_event("s1", "H1", T0 + timedelta(minutes=5))], Sender("test"))
    ingest(core, detainer_event("d2", "W2", T0 - timedelta(hours=5), a_number="A222222222"), Sender("test"))
    with core.uow(read_only=True) as uow:
        deadline = uow.cases.open_for("H1").deadline_at
    clock.set(deadline + timedelta(minutes=2))  # no sweep: the board must not wait for one to say it
    with core.uow(read_only=True) as uow:
        rows = {r["booking"]: r for r in board_rows(open_cases(uow, core.policy, clock.now()), core.policy)}
    assert (rows["H1"]["!"], rows["H1"]["time left"]) == ("OVERDUE", "passed 0h02m ago")
    waiting = rows["W2"]
    assert waiting["!"] == "" and waiting["status"] == "awaiting release"
    assert [name for name, value in waiting.items() if value == ""] == [
        "!", "deadline", "time left", "past release due", "served by", "ICE notices not acknowledged"]
    assert waiting["warnings"] == "no copy of the detainer has been recorded as given to the person (rule 4)"
