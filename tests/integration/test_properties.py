"""Property: whatever valid events arrive, in whatever order, at whatever times,
the deadline never exceeds the first T0 + 48 h, no hold stands without
authority, and after a sweep no hold is open past its release-order time."""
import shutil
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import make_url

from models.clock import FixedClock
from models.db import make_engine, migrate
from models.domain import DetainerForm, Status
from models.handlers import Core, Sender, ingest, load_roster, sweep
from models.rules import authority_problems, roster_entry_at
from tests.builders import (
    ROSTER_CSV,
    copy_event,
    detainer_event,
    lift_event,
    policy,
    release_event,
    released_event,
    service_event,
    transfer_event,
    utc,
)
from tests.databases import ON_POSTGRES, database_url, remove_database

BASE = utc(2026, 3, 6, 12)  # spans the spring DST change
LIMIT = timedelta(hours=48)
POLICIES = {mode: policy(mode=mode) for mode in ("wso", "detainer", "notify_only")}


def prepare(url: str) -> None:
    engine = make_engine(url)
    migrate(engine)
    load_roster(Core(engine, POLICIES["wso"], FixedClock(utc(2026, 1, 1))), ROSTER_CSV, source="t", actor="t")
    engine.dispose()


# What an example writes; the roster (and the schema) stay as prepared.
EXAMPLE_TABLES = ("cases", "detainers", "event_inbox", "bookings", "counters", "outbox", "delivery_attempts", "case_runs")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A migrated database with the roster. Each example starts from a copy of
    the SQLite file. On PostgreSQL, where a new database costs ~0.25 s, the
    examples share one scratch database emptied of what each example wrote; its
    audit trail's append-only guard is lifted for that (the guard has its own
    tests) and the roster's audit entries are kept."""
    url = database_url(tmp_path_factory.mktemp("template"))
    prepare(url)
    if ON_POSTGRES:
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_trail DISABLE TRIGGER USER"))
        engine.dispose()
    return url


def example_database(template: str, folder) -> str:
    if ON_POSTGRES:
        engine = make_engine(template)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(EXAMPLE_TABLES)} RESTART IDENTITY"))
            conn.execute(text("DELETE FROM audit_trail WHERE chain <> 'system'"))
        engine.dispose()
        return template
    path = folder / "custody.db"
    shutil.copy(make_url(template).database, path)
    return f"sqlite:///{path}"


offsets = st.integers(min_value=0, max_value=4 * 24 * 60).map(lambda m: timedelta(minutes=m))


@st.composite
def histories(draw):
    events = []
    for person in range(draw(st.integers(1, 2))):
        booking = f"B{person}"
        ids = iter(range(100))

        def eid(kind):
            return f"{booking}-{kind}-{next(ids)}"

        for _ in range(draw(st.integers(0, 2))):
            events.append(detainer_event(
                eid("d"), booking, BASE + draw(offsets), a_number=f"A00000000{person}",
                form=draw(st.sampled_from([f.value for f in DetainerForm])), box1=draw(st.booleans()),
                warrant=draw(st.sampled_from(["W-77", None])), verified=draw(st.booleans()),
                event_number=draw(st.sampled_from(["EV1", "EV2"]))))
        for _ in range(draw(st.integers(0, 2))):
            events.append(release_event(eid("r"), booking, BASE + draw(offsets)))
        for _ in range(draw(st.integers(0, 2))):
            events.append(service_event(eid("s"), booking, BASE + draw(offsets), badge=draw(st.sampled_from(["W-1", "W-2", "W-9"])),
                                        warrant=draw(st.sampled_from(["W-77", "W-78"]))))
        optional = [(lift_event, "l"), (transfer_event, "x"), (released_event, "o"), (copy_event, "c")]
        for make, kind in optional:
            if draw(st.booleans()):
                events.append(make(eid(kind), booking, BASE + draw(offsets)))
    order = draw(st.permutations(events))
    delays = draw(st.lists(st.integers(0, 600), min_size=len(order), max_size=len(order)))
    duplicate = draw(st.booleans())
    return list(order) + ([order[0]] if duplicate and order else []), delays


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(), mode=st.sampled_from(sorted(POLICIES)), sweep_after=offsets)
def test_no_hold_past_its_time_and_none_without_authority(template, tmp_path, history, mode, sweep_after):
    events, delays = history
    folder = tmp_path / f"p{abs(hash((str(events), mode))) % 10**9}"
    folder.mkdir(exist_ok=True)
    url = example_database(template, folder)
    engine = make_engine(url)
    pol = POLICIES[mode]
    clock = FixedClock(BASE)
    core = Core(engine, pol, clock)
    try:
        for event, delay in zip(events, delays):
            occurred = event["occurred_at"]
            at = datetime.fromisoformat(occurred.replace("Z", "+00:00"))
            clock.set(max(clock.now(), at + timedelta(minutes=delay)))
            assert ingest(core, event, Sender("prop")).result in {"accepted", "duplicate", "rejected"}

        releases = {}
        for event in events:
            if event["type"] == "release.authorized":
                at = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
                releases[event["booking_number"]] = min(at, releases.get(event["booking_number"], at))

        clock.set(clock.now() + sweep_after)
        sweep(core)
        now = clock.now()
        with core.uow(read_only=True) as uow:
            cases = uow.cases_all()
            for case in cases:
                if case.deadline_at is not None:
                    # No anchor rules in these policies: T0 is the release authorisation.
                    assert case.deadline_at == case.t0 + LIMIT
                    assert case.deadline_at <= releases[case.booking_number] + LIMIT, (case.case_id, case.t0)
                if case.hold_authorized:
                    assert authority_problems(case.detainer, pol) == []
                    if mode == "wso":
                        entry = roster_entry_at(uow.roster_entries(case.served_by), case.served_by, case.served_at)
                        assert entry is not None and entry.certified_on_day(pol.local(case.served_at).date())
                        assert case.served_at <= case.release_authorized_at + pol.service_grace
                if case.status is Status.HELD:
                    assert case.hold_authorized
                    assert now < case.release_order_at, (case.case_id, now, case.release_order_at)
                if case.status is Status.RELEASE_AUTHORIZED:
                    assert now < case.release_authorized_at + pol.service_grace
    finally:
        engine.dispose()
        if not ON_POSTGRES:
            remove_database(url)
