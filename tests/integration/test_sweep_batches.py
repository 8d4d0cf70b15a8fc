"""The sweep writes due cases in batches: one transaction (one durable commit)
for many release orders, each still given exactly once."""
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update

import custody.service.backstop as backstop
from custody.service.backstop import SweepReport, advance_cases, due_cases, sweep
from custody.service.core import Sender
from custody.service.intake import ingest
from custody.store import schema as t
from custody.store.repositories.cases import CaseRepository, ConcurrentUpdate, saved_state
from custody.store.unit_of_work import SqlUnitOfWork
from models.domain import Notice, Status
from models.notices import address
from tests.builders import detainer_event, policy, release_event, utc

T0 = utc(2026, 3, 1, 12)
CASES = 120


@pytest.fixture
def due_core(make_core, clock, monkeypatch):
    """CASES holds whose release orders are all due (T0 + 46 h has passed)."""
    monkeypatch.setattr(backstop, "SWEEP_BATCH", 50)
    core = make_core(policy(mode="detainer", reminder_marks=["1h"]))
    clock.set(T0 + timedelta(minutes=1))
    for n in range(CASES):
        ingest(core, detainer_event(f"d{n}", f"B{n}", T0 - timedelta(hours=2), a_number=f"A{n:09d}"), Sender("test"))
        assert ingest(core, release_event(f"r{n}", f"B{n}", T0), Sender("test")).outcome.startswith("hold_started")
    clock.set(T0 + timedelta(hours=46, minutes=1))
    return core


def counted_commits(engine) -> list[int]:
    commits = [0]

    @event.listens_for(engine, "commit")
    def count(_conn):
        commits[0] += 1
    return commits


def orders_and_rows(core):
    with core.engine.connect() as conn:
        orders = conn.execute(select(func.count()).where(t.audit.c.action == "release_ordered")).scalar_one()
        rows = conn.execute(select(func.count()).where(t.outbox.c.kind == "release-order")).scalar_one()
        versions = dict(conn.execute(select(t.cases.c.case_id, t.cases.c.version)).all())
    return orders, rows, versions


def test_due_release_orders_are_committed_a_batch_at_a_time(due_core):
    commits = counted_commits(due_core.engine)

    report = sweep(due_core)

    assert commits[0] == 3  # 120 cases, 50 per transaction
    assert sum(a.action == "release_ordered" for a in report.actions) == CASES
    orders, rows, _ = orders_and_rows(due_core)
    assert (orders, rows) == (CASES, CASES * 3)
    with SqlUnitOfWork(due_core.engine, read_only=True) as uow:
        assert uow.audit.broken_links() == []  # the hash chains were extended in order


def test_a_batch_costs_the_same_statements_for_fifty_cases_as_for_one(due_core):
    """Every statement is a round trip to the server (PostgreSQL): a batch's
    cost must not grow with the cases in it (one advisory lock per audit chain
    once cost a third of a second per thousand orders)."""
    statements = []
    event.listen(due_core.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    sweep(due_core)

    per_batch = len(statements) / 3  # 120 cases, 50 per batch
    assert per_batch < 20, sorted(set(s.split()[0] + " " + s.split()[1] for s in statements))


def test_a_sweep_over_a_due_list_another_sweep_has_done_writes_nothing(due_core):
    due = due_cases(due_core, due_core.clock.now())
    advance_cases(due_core, due, "first", SweepReport(due_core.clock.now()))
    before = orders_and_rows(due_core)
    commits = counted_commits(due_core.engine)

    second = SweepReport(due_core.clock.now())
    advance_cases(due_core, due, "second", second)

    assert second.actions == [] and second.examined == CASES
    assert orders_and_rows(due_core) == before  # no order, no row, and no version moved
    assert commits[0] == 3  # three empty transactions


def test_a_batch_that_loses_a_race_is_decided_again_from_a_fresh_read(due_core, monkeypatch):
    save = CaseRepository.save_many
    raced = []

    def lose_the_first_race(self, changes, policy):
        if not raced:
            raced.append(len(changes))
            raise ConcurrentUpdate(changes[0][0].case_id)
        return save(self, changes, policy)
    monkeypatch.setattr(CaseRepository, "save_many", lose_the_first_race)

    report = sweep(due_core)

    assert raced == [50]
    assert sum(a.action == "release_ordered" for a in report.actions) == CASES
    orders, rows, versions = orders_and_rows(due_core)
    assert (orders, rows) == (CASES, CASES * 3)
    assert set(versions.values()) == {4}  # written twice at opening, once for the hold, once for the order: once each


def stale_and_changed(core, ids, advance):
    """The cases read (not locked) and, for those `advance` picks, advanced to
    what is due now; the others are saved as they were."""
    with SqlUnitOfWork(core.engine, read_only=True) as uow:
        cases = [uow.cases.get(case_id) for case_id in ids]
    now = core.clock.now()
    for n, case in enumerate(cases):
        if advance(n):
            case.advance(now, core.policy)
            case.drain_effects()
    return cases, now


def test_cases_saved_together_store_each_ones_state_nulls_and_instants_included(due_core):
    ids = [case_id for case_id, _ in due_cases(due_core, due_core.clock.now())][:50]
    cases, now = stale_and_changed(due_core, ids, lambda n: n % 2 == 0)
    assert any(case.release_ordered_at is None for case in cases) and any(case.release_ordered_at for case in cases)

    with SqlUnitOfWork(due_core.engine) as uow:
        uow.cases.save_many([(case, now) for case in cases], due_core.policy)
        uow.commit()

    with SqlUnitOfWork(due_core.engine, read_only=True) as uow:
        stored = {case.case_id: (case.version, state) for case, state in uow.cases.for_update(ids, skip_locked=False)}
        updated = dict(uow.conn.execute(select(t.cases.c.case_id, t.cases.c.updated_at)).all())
    for case in cases:
        assert stored[case.case_id] == (case.version, saved_state(case, due_core.policy)), case.case_id
        assert updated[case.case_id] == now
    assert {version for version, _ in stored.values()} == {4}  # 3 when read


def test_a_batch_one_of_whose_cases_another_writer_changed_meanwhile_writes_none(due_core):
    """Compare-and-set over a batch: one case written by someone else since it
    was read, and no case of the batch is written (the sweep decides them all
    again from a fresh read)."""
    ids = [case_id for case_id, _ in due_cases(due_core, due_core.clock.now())][:50]
    cases, now = stale_and_changed(due_core, ids, lambda n: True)
    with SqlUnitOfWork(due_core.engine) as other:
        other.conn.execute(update(t.cases).where(t.cases.c.case_id == ids[17]).values(version=t.cases.c.version + 1))
        other.commit()
    before = orders_and_rows(due_core)

    with pytest.raises(ConcurrentUpdate), SqlUnitOfWork(due_core.engine) as uow:
        uow.cases.save_many([(case, now) for case in cases], due_core.policy)
        uow.commit()

    assert orders_and_rows(due_core) == before
    assert {case.version for case in cases} == {3}  # the objects were not moved on either
    with SqlUnitOfWork(due_core.engine, read_only=True) as uow:
        assert [uow.cases.get(case_id).status for case_id in ids] == [Status.HELD] * 50


def test_notices_queued_together_count_only_the_rows_added(due_core):
    ids = [case_id for case_id, _ in due_cases(due_core, due_core.clock.now())][:3]
    cases, now = stale_and_changed(due_core, ids, lambda n: False)
    notice = Notice("test-notice", ("ice", "release_desk"))
    with SqlUnitOfWork(due_core.engine) as uow:
        def written(*for_cases):
            return [m for case in for_cases for m in address(notice, case, due_core.policy, now)]
        assert uow.outbox.add_many(written(cases[0])) == 2
        # one already there, one twice in the same call, one new: 2 + 2 rows new
        assert uow.outbox.add_many(written(cases[0], cases[1], cases[1], cases[2])) == 4
        uow.commit()
    with due_core.engine.connect() as conn:
        keys = conn.execute(select(t.outbox.c.idempotency_key).where(t.outbox.c.kind == "test-notice")
                            .order_by(t.outbox.c.id)).scalars().all()
    assert keys == [f"{case_id}:test-notice:{group}" for case_id in ids for group in ("ice", "release_desk")]


def test_a_window_waiting_for_its_officers_reports_does_not_hide_the_next_due_instant(make_core, clock):
    """While a closed window waits for its officers' forms to be read, the pass
    names the next instant of the other cases (so the backstop still prepares
    for it), and decides the window as soon as the reports are read."""
    core = make_core(policy(service_grace="1h", report_wait="30s"))
    clock.set(T0)
    for n, t0 in enumerate((T0, T0 + timedelta(seconds=10))):
        ingest(core, detainer_event(f"d{n}", f"B{n}", T0 - timedelta(hours=2), a_number=f"A{n:09d}"), Sender("test"))
        ingest(core, release_event(f"r{n}", f"B{n}", t0), Sender("test"))
    with SqlUnitOfWork(core.engine) as uow:
        waiting, other = (uow.cases.open_for(f"B{n}").case_id for n in range(2))
        uow.runs.record(waiting, "00000000-0000-0000-0000-000000000001", T0)  # its run may hold a form
        uow.commit()

    clock.set(T0 + timedelta(hours=1, seconds=1))
    report = sweep(core)

    assert report.actions == [] and report.awaiting_reports == [waiting]
    assert report.reports_awaited_until == T0 + timedelta(hours=1, seconds=30)
    assert report.next_due_at == T0 + timedelta(hours=1, seconds=10, microseconds=1)  # the other window, not the past one

    with SqlUnitOfWork(core.engine) as uow:
        uow.form_reads.record("prefect-ui", T0 + timedelta(hours=1), clock.now())
        uow.commit()
    report = sweep(core)
    assert [(a.case_id, a.action) for a in report.actions] == [(waiting, "release_ordered")]
    assert report.next_due_at == T0 + timedelta(hours=1, seconds=10, microseconds=1)
    assert other not in report.awaiting_reports
