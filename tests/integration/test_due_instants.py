"""The backstop finds a case by the due instant stored with it: one stored by
older code or an older policy must not hide what is due now."""
from datetime import timedelta

from sqlalchemy import update

from custody.loops import Backstop
from custody.service.backstop import refresh_due_instants, sweep
from custody.service.core import Sender
from custody.service.intake import ingest
from custody.service.views import find_case
from custody.store import schema as t
from tests.builders import detainer_event, lift_event, release_event, service_event

M = timedelta(minutes=1)


def lifted_hold(core, clock):
    t0 = clock.now()
    for event in (detainer_event("d1", "B1", t0 - timedelta(days=1)), release_event("r1", "B1", t0),
                  service_event("s1", "B1", t0 + 5 * M)):
        clock.set(max(clock.now(), t0 + 5 * M))
        assert ingest(core, event, Sender("test")).result == "accepted"
    lifted = clock.now() + 10 * M
    clock.set(lifted)
    assert ingest(core, lift_event("l1", "B1", lifted), Sender("test")).result == "accepted"
    return t0, lifted


def stale(core, t0):
    """What older code stored for a lifted hold: the page 30 minutes before the far deadline."""
    with core.engine.begin() as conn:
        conn.execute(update(t.cases).values(next_due_at=t0 + timedelta(hours=48) - 30 * M))


def test_a_stale_due_instant_is_corrected_so_the_page_comes_on_time(core, clock):
    t0, lifted = lifted_hold(core, clock)
    stale(core, t0)
    clock.set(lifted + 31 * M)
    assert sweep(core).examined == 0  # the stored instant hides the page
    assert refresh_due_instants(core) == 1
    report = sweep(core)
    assert [a.action for a in report.actions] == ["supervisors_paged"]
    assert refresh_due_instants(core) == 0  # harmless to repeat


def test_the_backstop_corrects_stored_instants_after_its_first_pass_and_passes_again_at_once(core, clock):
    t0, lifted = lifted_hold(core, clock)
    stale(core, t0)
    clock.set(lifted + 31 * M)
    backstop = Backstop(core)
    assert backstop.one_pass() == timedelta(0) and backstop.last_report.actions == []
    backstop.one_pass()
    with core.uow(read_only=True) as uow:
        assert find_case(uow, "B1").supervisors_paged_at == lifted + 31 * M
