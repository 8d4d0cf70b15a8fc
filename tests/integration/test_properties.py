"""Property: whatever valid events arrive, in whatever order, at whatever times,
the deadline never exceeds the first T0 + 48 h, no hold stands without
authority, and after a sweep no hold is open past its release-order time."""
import json
import shutil
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import make_url

from custody.service.backstop import sweep
from custody.service.core import Core, Sender
from custody.service.intake import ingest
from custody.service.roster import load_roster
from custody.store.db import make_engine, migrate
from models.clock import FixedClock
from models.domain import DetainerForm, Status
from models.events import SAME_INSTANT_ORDER
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
            conn.execute(text("ALTER TABLE audit_heads DISABLE TRIGGER USER"))
        engine.dispose()
    return url


def example_database(template: str, folder) -> str:
    if ON_POSTGRES:
        engine = make_engine(template)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(EXAMPLE_TABLES)} RESTART IDENTITY"))
            conn.execute(text("DELETE FROM audit_trail WHERE chain <> 'system'"))
            conn.execute(text("DELETE FROM audit_heads WHERE chain <> 'system'"))
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
            cases = uow.cases.all()
            for case in cases:
                if case.deadline_at is not None:
                    # No anchor rules in these policies: T0 is the release authorisation.
                    assert case.deadline_at == case.t0 + LIMIT
                    assert case.deadline_at <= releases[case.booking_number] + LIMIT, (case.case_id, case.t0)
                if case.hold_authorized:
                    assert authority_problems(case.detainer, pol) == []
                    if mode == "wso":
                        entry = roster_entry_at(uow.roster.entries(case.served_by), case.served_by, case.served_at)
                        assert entry is not None and entry.certified_on_day(pol.local(case.served_at).date())
                        assert case.served_at <= case.release_authorized_at + pol.service_grace
                if case.status is Status.HELD:
                    assert case.hold_authorized
                    assert now < case.release_order_at, (case.case_id, now, case.release_order_at)
                if case.status is Status.RELEASE_AUTHORIZED:
                    assert now < case.release_authorized_at + pol.service_grace
                check_the_record(case, pol, uow.audit.for_case(case.case_id))
    finally:
        engine.dispose()
        if not ON_POSTGRES:
            remove_database(url)


# --- facts judged by their own time -----------------------------------------------------------

@st.composite
def one_case(draw):
    """One person's facts, each at its own (distinct) minute: a detainer, the
    release authorisation, services around the window, and now and then a lift,
    a pickup, a release from the jail or a copy served."""
    booking, t = "B0", BASE
    minutes = draw(st.lists(st.integers(0, 300), min_size=9, max_size=9, unique=True))
    release = minutes[0]
    events = [detainer_event("d", booking, t + timedelta(minutes=minutes[1] - 600), a_number="A000000001",
                             verified=draw(st.booleans()) or draw(st.booleans()))]
    if draw(st.booleans()) or draw(st.booleans()):
        events.append(release_event("r", booking, t + timedelta(minutes=release)))
    for n in range(draw(st.integers(0, 2))):
        at = t + timedelta(minutes=release - 30 + minutes[2 + n] % 150)
        events.append(service_event(f"s{n}", booking, at, badge=draw(st.sampled_from(["W-1", "W-1", "W-9"]))))
    for n, (make, kind) in enumerate([(lift_event, "l"), (transfer_event, "x"), (released_event, "o"), (copy_event, "c")]):
        if draw(st.integers(0, 3)) == 0:
            events.append(make(kind, booking, t + timedelta(minutes=release + minutes[4 + n] % 240 - 20)))
    return events


def occurred(event) -> datetime:
    return datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))


def outcome(core):
    with core.uow(read_only=True) as uow:
        [case] = uow.cases.all()
    return {"status": case.status, "hold_authorized": case.hold_authorized, "served_at": case.served_at, "t0": case.t0,
            "deadline_at": case.deadline_at, "released_at": case.released_at, "transferred_at": case.transferred_at,
            "lifted_at": case.lifted_at}, case


def audit_of(core, case):
    with core.uow(read_only=True) as uow:
        return uow.audit.for_case(case.case_id)


def backstop_until(core, clock, until: datetime) -> None:
    """A backstop that never lags: a sweep at every due instant up to `until`."""
    while True:
        with core.uow(read_only=True) as uow:
            due = uow.cases.next_due_instant()
        if due is None or due > until:
            break
        clock.set(max(clock.now(), due))
        sweep(core)
    clock.set(max(clock.now(), until))
    sweep(core)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=one_case(), order=st.randoms(use_true_random=False), late=st.integers(0, 40 * 60))
def test_facts_count_by_their_own_time_however_they_are_batched_and_however_late(template, tmp_path, events, order, late):
    """The same facts delivered one by one at their times (with a backstop that
    never lags), and all at once later in any order (before the deadline), end
    the same: status, hold, service, clock, and how the person left."""
    from custody.service.intake import ingest_many
    note(f"events: {json.dumps(events)}")  # Hypothesis's own repr of them is empty
    folder = tmp_path / f"t{abs(hash(str(events))) % 10**9}"
    folder.mkdir(exist_ok=True)
    pol = POLICIES["wso"]
    cores = []
    try:
        for name in ("at-their-times", "all-at-once"):
            sub = folder / name
            sub.mkdir(exist_ok=True)
            engine = make_engine(example_database(template, sub))
            cores.append(Core(engine, pol, FixedClock(BASE - timedelta(days=1))))
            if ON_POSTGRES:
                break  # one scratch database: the two deliveries run one after the other below
        # At their times: facts of one instant as a sender would send them, the release before the person leaves.
        timely = sorted(events, key=lambda e: (occurred(e), SAME_INSTANT_ORDER[e["type"]]))
        last = occurred(timely[-1])
        releases = [occurred(e) for e in events if e["type"] == "release.authorized"]
        arrive = last + timedelta(minutes=late)
        if releases:
            arrive = min(arrive, releases[0] + LIMIT - timedelta(minutes=1))  # before the deadline
        arrive = max(arrive, last)

        core = cores[0]
        for event in timely:
            backstop_until(core, core.clock, occurred(event))
            assert ingest(core, event, Sender("prop")).result in {"accepted", "rejected"}
        backstop_until(core, core.clock, arrive)
        one_by_one, case = outcome(core)
        check_the_record(case, pol, audit_of(core, case))
        if ON_POSTGRES:
            example_database(template, folder)  # emptied for the second delivery
        else:
            core = cores[1]
        shuffled = list(events)
        order.shuffle(shuffled)
        core.clock.set(arrive)
        assert {r.result for r in ingest_many(core, shuffled, Sender("prop"))} <= {"accepted", "rejected"}
        sweep(core)
        together, case = outcome(core)
        check_the_record(case, pol, audit_of(core, case))
        assert together == one_by_one
    finally:
        for core in cores:
            core.engine.dispose()


def check_the_record(case, pol, audit) -> None:
    """A case's status, reasons and timeline never contradict each other: the
    timeline's statuses follow one another and end at the case's; a reason that
    says no service came within the grace never stands beside a service inside
    it; a hold stands only with a service inside the grace (wso) and no reason
    against it; the release's time and the minutes past due agree."""
    statuses = [(row["status_before"], row["status_after"]) for row in audit if row["status_after"] is not None]
    assert statuses, case.case_id
    for (_, after), (before, _) in zip(statuses, statuses[1:]):
        assert before == after, [(r["action"], r["status_before"], r["status_after"]) for r in audit]
    assert statuses[-1][1] == str(case.status)
    window_closes = case.release_authorized_at + pol.service_grace if case.release_authorized_at else None
    if "no certified WSO served" in (case.no_hold_reason or "") and case.served_at is not None:
        assert case.served_at > window_closes, (case.served_at, case.release_authorized_at)
    if case.hold_authorized:
        assert case.no_hold_reason is None and case.hold_started_at is not None
        if pol.mode.value == "wso":
            assert case.served_at is not None and case.served_at <= window_closes
    if case.status is Status.HELD:
        assert case.hold_authorized and case.release_ordered_at is None
    if case.status in (Status.RELEASE_ORDERED, Status.RELEASED) and case.release_ordered_at is not None:
        assert any(row["action"] == "release_ordered" for row in audit)
    if case.status is Status.RELEASED:
        assert case.released_at is not None
    due = case.release_due(pol)
    if due is not None and case.left_custody_at is not None and case.status is not Status.CLOSED:
        late = case.minutes_past_due(pol, case.left_custody_at)
        says_late = [row for row in audit if "AFTER release was due" in row["reason"]]
        assert (late > 0) == bool(says_late), (late, [r["reason"] for r in says_late])
