"""The backstop loop of `custody up`, one pass at a time, on a real database
with a clock that moves while a pass runs."""
from datetime import timedelta

from sqlalchemy import select

from custody.loops import Backstop
from models import schema as t
from models.handlers import Sender, ingest
from tests.builders import detainer_event, policy, release_event, utc

T0 = utc(2026, 3, 1, 12)


class TickingClock:
    """Each reading is `tick` later than the one before: work takes time."""

    def __init__(self, start, tick):
        self.at, self.tick = start, tick

    def now(self):
        self.at += self.tick
        return self.at


def test_a_release_order_falling_due_during_a_pass_is_given_by_the_next_pass_without_a_pause(make_core, clock):
    core = make_core(policy(mode="detainer", reminder_marks=["1h"]))  # first due: the release order
    clock.set(T0 + timedelta(minutes=1))
    for n, offset in enumerate((timedelta(0), timedelta(milliseconds=2))):
        ingest(core, detainer_event(f"d{n}", f"B{n}", T0 - timedelta(hours=2), a_number=f"A00000000{n}"), Sender("test"))
        assert ingest(core, release_event(f"r{n}", f"B{n}", T0 + offset), Sender("test")).outcome.startswith("hold_started")
    first_order = T0 + timedelta(hours=46)  # release order: 2 h before the 48 h deadline
    ticking = TickingClock(first_order, timedelta(milliseconds=1))
    backstop = Backstop(type(core)(core.engine, core.policy, ticking))

    wait = backstop.one_pass()  # reads the due list at +1 ms: only the first case is due

    assert [a.case_id for a in backstop.last_report.actions] == ["2026-00001"]
    assert wait == timedelta(0)  # the second fell due at +2 ms, while the pass ran
    backstop.one_pass()
    assert [a.case_id for a in backstop.last_report.actions] == ["2026-00002"]
    with core.engine.connect() as conn:
        ordered = dict(conn.execute(select(t.cases.c.case_id, t.cases.c.release_ordered_at)).all())
    assert all(at is not None for at in ordered.values())
