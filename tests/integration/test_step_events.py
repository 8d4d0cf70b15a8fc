"""Every step of a case as a Prefect event (custody/adapters/prefect/events.py):
which audit entries are still to be published, what each event says, and that
an outage leaves them to be published later. Prefect's API is the network
edge: here a small fake of its events endpoint."""
import uuid
from datetime import timedelta

import httpx
import pytest

import custody.adapters.prefect.events as events
from custody.adapters.prefect.events import publish_case_steps, step_event
from custody.adapters.prefect.sync import tell_case_steps
from custody.service.core import Sender
from custody.service.intake import ingest
from custody.store import schema as t
from tests.builders import detainer_event, release_event, service_event
from tests.integration.helpers import rows

H = timedelta(hours=1)


class FakeEvents:
    """POST /events, answered from memory; `down` makes it refuse connections."""

    def __init__(self):
        self.received: list[dict] = []
        self.down = False

    def __call__(self, **_kwargs):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def request(self, method, path, json):
        assert (method, path) == ("POST", "/events")
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        self.received += json
        return httpx.Response(204, request=httpx.Request("POST", "http://prefect/api/events"))


@pytest.fixture
def prefect(monkeypatch):
    fake = FakeEvents()
    monkeypatch.setattr("prefect.client.orchestration.get_client", fake)
    return fake


def held(core, clock, booking="B1", a_number="A123456789", run=True):
    """A held case, with its run in Prefect (as the sync creates it) unless `run` is False."""
    t0 = clock.now() - 10 * timedelta(minutes=1)
    for event in (detainer_event(f"{booking}-d", booking, t0 - H, a_number=a_number), release_event(f"{booking}-r", booking, t0),
                  service_event(f"{booking}-s", booking, t0 + timedelta(minutes=1))):
        result = ingest(core, event, Sender("test"))
        assert result.result == "accepted"
    if run:
        give_run(core, clock, result.case_id)
    return result.case_id


def give_run(core, clock, case_id):
    with core.uow() as uow:
        uow.runs.record(case_id, str(uuid.uuid5(uuid.NAMESPACE_URL, case_id)), clock.now())
        uow.commit()


def test_each_step_of_a_case_is_published_once_in_order_naming_the_case_and_its_run(core, clock, prefect):
    held(core, clock)
    assert publish_case_steps(core) == 3
    assert [e["event"] for e in prefect.received] == ["custody.case.case-opened", "custody.case.release-authorized",
                                                      "custody.case.hold-started"]
    opened, _, started = prefect.received
    assert started["resource"] == {"prefect.resource.id": "custody.case.2026-00001", "prefect.resource.name": "case-2026-00001",
                                   "custody.status": "held", "custody.status-before": "release_authorized"}
    assert started["related"] == [{"prefect.resource.id": f"prefect.flow-run.{uuid.uuid5(uuid.NAMESPACE_URL, '2026-00001')}",
                                   "prefect.resource.role": "flow-run", "prefect.resource.name": "case-2026-00001"}]
    [entry] = [r for r in rows(core.engine, t.audit) if r["action"] == "hold_started"]
    assert started["payload"]["reason"] == entry["reason"] and started["occurred"].endswith("Z")
    assert publish_case_steps(core) == 0  # told: not again
    assert len({e["id"] for e in prefect.received}) == 3
    assert opened["resource"]["custody.status-before"] == "new"


def test_a_case_whose_run_is_not_made_yet_waits_for_it_so_every_event_names_its_run(core, clock, prefect):
    case_id = held(core, clock, run=False)
    assert publish_case_steps(core) == 0 and prefect.received == []
    give_run(core, clock, case_id)
    assert publish_case_steps(core) == 3


def test_an_event_id_is_the_entrys_so_a_step_published_twice_is_stored_once(core, clock):
    held(core, clock)
    with core.uow(read_only=True) as uow:
        entries = uow.step_events.untold(10)
    assert [step_event(e)["id"] for e in entries] == [step_event(e)["id"] for e in entries]
    assert len({step_event(e)["id"] for e in entries}) == len(entries) == 3


def test_steps_written_while_prefect_is_down_are_published_when_it_returns(core, clock, prefect, caplog):
    prefect.down = True
    held(core, clock)
    with caplog.at_level("WARNING", logger="custody.sync"):
        assert tell_case_steps(core) == "deferred"
    assert "Prefect not reachable (ConnectError" in caplog.text and prefect.received == []
    held(core, clock, booking="B2", a_number="A223456789")
    prefect.down = False
    assert tell_case_steps(core) == 6
    by_case = {}
    for e in prefect.received:
        by_case.setdefault(e["resource"]["prefect.resource.id"], []).append(e["event"])
    assert by_case == {f"custody.case.{c}": ["custody.case.case-opened", "custody.case.release-authorized",
                                             "custody.case.hold-started"] for c in ("2026-00001", "2026-00002")}


def test_a_mark_never_moves_back_and_a_batch_boundary_loses_nothing(core, clock, prefect, monkeypatch):
    monkeypatch.setattr(events, "BATCH", 2)
    held(core, clock)
    held(core, clock, booking="B2", a_number="A223456789")
    assert publish_case_steps(core) == 6
    assert [e["payload"]["seq"] for e in prefect.received if e["resource"]["prefect.resource.id"].endswith("00001")] == [1, 2, 3]
    with core.uow() as uow:
        uow.step_events.told({"2026-00001": 1})  # a slower publisher finishing late
        uow.commit()
    with core.uow(read_only=True) as uow:
        assert uow.step_events.untold(10) == []


def test_a_fault_of_ours_is_logged_with_its_traceback_not_called_an_outage(core, clock, prefect, monkeypatch, caplog):
    held(core, clock)
    monkeypatch.setattr(events, "step_event", lambda entry: entry["no such column"])
    with caplog.at_level("WARNING", logger="custody.sync"):
        assert tell_case_steps(core) == "failed"
    record = next(r for r in caplog.records if r.name == "custody.sync")
    assert record.exc_info is not None and "not reachable" not in caplog.text
