"""The reader of the officers' forms (custody/adapters/prefect/form_reader.py) against a
small fake of the Prefect API, the network edge: which runs it reads, what it
records and what it claims to have read."""
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from uuid import UUID, uuid4

import pytest
from prefect.client.schemas.objects import StateType
from sqlalchemy import select

import custody.adapters.prefect.artifacts as artifacts
import custody.adapters.prefect.form_reader as reader_module
from custody.adapters.prefect.form_reader import MARGIN, OfficerReports
from custody.service.core import Sender
from custody.service.intake import ingest
from custody.service.officer_report import response_key
from custody.store import schema as t
from custody.store.unit_of_work import SqlUnitOfWork
from tests.builders import detainer_event, policy, release_event, utc

T0 = utc(2026, 3, 11, 12)
GRACE = timedelta(hours=1)
FORM = {"officer_badge": "W-1", "warrant_number": "W-77", "served_inside_facility": True}


@dataclass
class FakeRun:
    id: UUID
    state_type: StateType = StateType.PAUSED
    state_at: datetime = T0
    inputs: list = field(default_factory=list)

    @property
    def state(self):
        return SimpleNamespace(type=self.state_type, timestamp=self.state_at)


class FakePrefect:
    """The Prefect client calls the reader makes, answered from memory."""

    def __init__(self):
        self.runs: dict[UUID, FakeRun] = {}
        self.inputs_read: list[UUID] = []
        self.logs: list = []
        self.down = False

    def read_flow_runs(self, flow_run_filter, limit):
        if self.down:
            raise ConnectionError("Prefect is down")
        wanted = flow_run_filter.id.any_
        return [self.runs[i] for i in wanted if i in self.runs][:limit]

    def filter_flow_run_input(self, flow_run_id, key_prefix, limit, exclude_keys):
        if self.down:
            raise ConnectionError("Prefect is down")
        self.inputs_read.append(flow_run_id)
        found = [i for i in self.runs[flow_run_id].inputs if i.key.startswith(key_prefix) and i.key not in exclude_keys]
        return found[:limit]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def create_logs(self, logs):
        self.logs += logs

    def submit(self, run: FakeRun, wait_key: str, value: dict, at: datetime) -> None:
        run.inputs.append(SimpleNamespace(key=response_key(wait_key), decoded_value=value, created=at))


@pytest.fixture
def world(make_core, clock, monkeypatch):
    """Two release-authorised cases whose runs wait for the officer's form."""
    monkeypatch.setattr(artifacts, "publish_timeline_for_run", lambda *args: None)
    core = make_core(policy(service_grace="1h"))
    clock.set(T0)
    prefect = FakePrefect()
    runs = {}
    for n in range(2):
        ingest(core, detainer_event(f"d{n}", f"B{n}", T0 - timedelta(hours=2), a_number=f"A{n:09d}"), Sender("test"))
        ingest(core, release_event(f"r{n}", f"B{n}", T0), Sender("test"))
        with SqlUnitOfWork(core.engine) as uow:
            case_id = uow.cases.open_for(f"B{n}").case_id
            run = FakeRun(uuid4())
            uow.runs.record(case_id, str(run.id), T0)
            uow.commit()
        prefect.runs[run.id] = run
        runs[case_id] = run
    reader = OfficerReports(core, connect=lambda: prefect)
    return SimpleNamespace(core=core, clock=clock, prefect=prefect, runs=runs, reader=reader)


def case(core, case_id):
    with SqlUnitOfWork(core.engine, read_only=True) as uow:
        return uow.cases.get(case_id)


def read_through(core):
    with core.engine.connect() as conn:
        return conn.execute(select(t.report_reads.c.read_through)).scalar_one_or_none()


def test_a_form_that_took_its_run_out_of_paused_and_back_between_passes_is_still_read(world):
    (first, run_a), (second, run_b) = world.runs.items()
    world.clock.set(T0 + timedelta(minutes=5))
    world.reader.one_pass()  # the first pass reads every run: nothing yet
    assert sorted(world.prefect.inputs_read) == sorted([run_a.id, run_b.id])

    # Between two passes the officer submits, the run wakes and pauses again.
    world.prefect.inputs_read.clear()
    world.clock.set(T0 + timedelta(minutes=10))
    world.prefect.submit(run_a, "waits-for-wso-service-1", FORM, T0 + timedelta(minutes=9, seconds=59))
    run_a.state_at = T0 + timedelta(minutes=9, seconds=59, milliseconds=500)
    world.reader.one_pass()

    assert world.prefect.inputs_read == [run_a.id]  # the run paused long ago is not asked
    held = case(world.core, first)
    assert (held.status.value, held.served_by) == ("held", "W-1")
    assert held.served_at == T0 + timedelta(minutes=9, seconds=59)  # served_at left empty: the moment of Submit
    assert [log.message.split(":")[0] for log in world.prefect.logs] == ["RECORDED"]
    assert case(world.core, second).status.value == "release_authorized"

    # A form whose transaction committed after the pass began, though stamped before it,
    # and whose run paused again by a clock a little behind ours: the margin finds it.
    world.prefect.inputs_read.clear()
    world.prefect.submit(run_b, "waits-for-wso-service-1", FORM, T0 + timedelta(minutes=9, seconds=59))
    run_b.state_at = T0 + timedelta(minutes=9, seconds=59, milliseconds=500)
    world.clock.set(T0 + timedelta(minutes=10, seconds=1))
    world.reader.one_pass()
    assert world.prefect.inputs_read == [run_b.id]
    assert case(world.core, second).status.value == "held"


def test_the_reader_claims_only_what_it_read_and_nothing_while_prefect_is_down(world):
    (first, run_a), (second, run_b) = world.runs.items()
    closes = T0 + GRACE
    world.clock.set(closes - timedelta(seconds=30))
    world.reader.one_pass()
    assert read_through(world.core) is None  # no window has closed: nothing to say yet

    world.prefect.down = True
    world.clock.set(closes + timedelta(seconds=5))
    assert world.reader.one_pass() == reader_module.RETRY
    assert read_through(world.core) in (None, reader_module.NEVER_READ)  # a failed pass claims nothing

    # Prefect is back: a form stored before the close, by a run now paused again, is read first.
    world.prefect.down = False
    world.prefect.submit(run_b, "waits-for-wso-service-1", FORM, closes - timedelta(seconds=1))
    run_b.state_type, run_b.state_at = StateType.PAUSED, closes + timedelta(seconds=3)
    world.clock.set(closes + timedelta(seconds=6))
    world.reader.one_pass()

    assert read_through(world.core) == closes + timedelta(seconds=6) - MARGIN
    assert case(world.core, second).status.value == "held"
    assert case(world.core, first).status.value == "release_authorized"  # the backstop decides it


def test_a_form_whose_served_at_lies_after_its_submit_is_refused_whenever_it_is_read(world):
    (first, run_a), _ = world.runs.items()
    submitted = T0 + timedelta(minutes=2)
    world.prefect.submit(run_a, "waits-for-wso-service-1", {**FORM, "served_at": (submitted + timedelta(minutes=6)).isoformat()},
                         submitted)
    world.clock.set(submitted + timedelta(minutes=4))  # read late: by the reader's clock the time is no longer far ahead
    world.reader.one_pass()

    assert case(world.core, first).status.value == "release_authorized"
    assert world.prefect.logs[0].message.startswith("REFUSED")
    assert "served_at: is more than 5 minutes after the form was submitted" in world.prefect.logs[0].message
