"""The case_runs row: the version and the mirror digest a case's run has seen,
on the pass's database (SQLite or PostgreSQL)."""
from tests.builders import utc

NOW = utc(2026, 3, 11, 12)


def row(core, case_id="2026-00001"):
    with core.uow(read_only=True) as uow:
        found = uow.runs.get(case_id)
        return found["synced_version"], found["mirror_digest"]


def write(core, fn):
    with core.uow() as uow:
        result = fn(uow)
        uow.commit()
        return result


def test_the_seen_version_never_moves_back_and_carries_its_digest(core):
    write(core, lambda uow: uow.runs.record("2026-00001", "run-1", NOW))
    assert row(core) == (0, None)
    write(core, lambda uow: uow.runs.synced("2026-00001", 3, "d3"))
    assert row(core) == (3, "d3")
    write(core, lambda uow: uow.runs.synced("2026-00001", 2, "d2"))  # an older execution reports late
    assert row(core) == (3, "d3")
    write(core, lambda uow: uow.runs.synced("2026-00001", 5))  # no digest (a finished run): the old one stays
    assert row(core) == (5, "d3")
    write(core, lambda uow: uow.runs.synced("2026-00001", 5, "d5"))  # the same version fills its digest in
    assert row(core) == (5, "d5")


def test_marking_in_step_without_a_wake_is_a_compare_and_set(core):
    write(core, lambda uow: uow.runs.record("2026-00001", "run-1", NOW))
    write(core, lambda uow: uow.runs.synced("2026-00001", 3, "d3"))
    # The run wrote since the sync read (3, "d3"): the sync's mark is refused.
    write(core, lambda uow: uow.runs.synced("2026-00001", 4, "d4"))
    assert write(core, lambda uow: uow.runs.synced_unchanged("2026-00001", 6, 3, "d3")) is False
    assert row(core) == (4, "d4")
    # What the sync read is still there: marked, the digest kept.
    assert write(core, lambda uow: uow.runs.synced_unchanged("2026-00001", 6, 4, "d4")) is True
    assert row(core) == (6, "d4")
    assert write(core, lambda uow: uow.runs.synced_unchanged("2026-00001", 6, 6, "d4")) is False  # never the same version twice
    assert write(core, lambda uow: uow.runs.synced_unchanged("2026-00001", 7, 6, "other")) is False
    assert row(core) == (6, "d4")


def lagging(core):
    with core.uow(read_only=True) as uow:
        return [(r["case_id"], r["version"]) for r in uow.runs.out_of_sync()]


def pending(core):
    with core.uow(read_only=True) as uow:
        return {case_id: bool(flag) for case_id, flag in uow.conn.exec_driver_sql("SELECT case_id, mirror_pending FROM cases").all()}


def test_a_case_lags_from_each_change_until_its_run_has_seen_it(core, clock):
    from datetime import timedelta

    from custody.service.core import Sender
    from custody.service.intake import ingest
    from tests.builders import detainer_event, release_event
    t0 = clock.now() - timedelta(minutes=10)
    for event in (detainer_event("d1", "B1", t0), detainer_event("d2", "B2", t0, a_number="A000000002")):
        assert ingest(core, event, Sender("test")).result == "accepted"
    versions = dict(lagging(core))
    assert sorted(versions) == ["2026-00001", "2026-00002"]  # no run yet
    v1, v2 = versions["2026-00001"], versions["2026-00002"]
    write(core, lambda uow: uow.runs.record("2026-00001", None, NOW, error="Prefect down"))
    assert pending(core) == {"2026-00001": True, "2026-00002": True}  # a failed creation is no run
    write(core, lambda uow: uow.runs.record("2026-00001", "run-1", NOW))
    assert pending(core)["2026-00001"] is True  # created, but it has not read the case yet (seen 0)
    write(core, lambda uow: uow.runs.synced("2026-00001", v1, "d1"))
    write(core, lambda uow: uow.runs.record("2026-00002", "run-2", NOW))
    assert write(core, lambda uow: uow.runs.synced_unchanged("2026-00002", v2, 0, "never-written")) is False
    assert pending(core) == {"2026-00001": False, "2026-00002": True} and lagging(core) == [("2026-00002", v2)]
    write(core, lambda uow: uow.runs.synced("2026-00002", v2))
    assert pending(core) == {"2026-00001": False, "2026-00002": False} and lagging(core) == []

    assert ingest(core, release_event("r1", "B1", clock.now()), Sender("test")).result == "accepted"  # a change: news to run-1
    version = dict(lagging(core))["2026-00001"]
    assert version > v1 and pending(core)["2026-00001"] is True
    write(core, lambda uow: uow.runs.synced("2026-00001", version - 1, "old"))  # an older read reports late: still lagging
    assert dict(lagging(core)) == {"2026-00001": version}
    write(core, lambda uow: uow.runs.synced("2026-00001", version, "new"))
    assert lagging(core) == [] and pending(core)["2026-00001"] is False


def test_the_catch_up_reads_only_the_lagging_cases(core):
    """Through the partial index, not a pass over every case there ever was
    (SQLite's plan; PostgreSQL chooses by its statistics, so is not asked)."""
    from sqlalchemy import event
    if core.engine.dialect.name != "sqlite":
        return
    captured = []
    event.listen(core.engine, "before_cursor_execute", lambda c, cur, statement, params, ctx, many: captured.append((statement, params)))
    lagging(core)
    statement, params = captured[-1]
    with core.uow(read_only=True) as uow:
        plan = " | ".join(str(r[-1]) for r in uow.conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all())
    assert "cases USING INDEX ix_cases_mirror_pending" in plan, plan  # an index of the lagging cases alone


def test_a_fault_while_creating_a_run_is_logged_as_a_fault_and_the_case_still_lags(core, clock, monkeypatch, caplog):
    """Prefect absent and a bug of ours both leave the case lagging for the
    reconciler; only the outage is called one, the bug is logged with its traceback."""
    from datetime import timedelta

    import httpx

    import custody.adapters.prefect.sync as sync
    from custody.service.core import Sender
    from custody.service.intake import ingest
    from tests.builders import detainer_event

    assert ingest(core, detainer_event("d1", "B1", clock.now() - timedelta(minutes=10)), Sender("test")).result == "accepted"

    def refused(*_args, **_kwargs):
        raise httpx.ConnectError("[Errno 111] Connection refused")
    monkeypatch.setattr(sync, "create_case_run", refused)
    with caplog.at_level("WARNING", logger="custody.sync"):
        assert sync.sync_case(core, "2026-00001") == "deferred"
    assert "Prefect not reachable (ConnectError" in caplog.text and "Traceback" not in caplog.text

    def broken(*_args, **_kwargs):
        raise KeyError("flow_run_id")
    monkeypatch.setattr(sync, "create_case_run", broken)
    caplog.clear()
    with caplog.at_level("WARNING", logger="custody.sync"):
        assert sync.sync_case(core, "2026-00001") == "failed"
    record = next(r for r in caplog.records if r.name == "custody.sync")
    assert "bringing its run in step failed" in record.getMessage() and record.exc_info[0] is KeyError
    assert "not reachable" not in caplog.text
    with core.uow(read_only=True) as uow:
        assert uow.runs.get("2026-00001")["last_error"] == "KeyError: 'flow_run_id'"
    assert "2026-00001" in dict(lagging(core))  # the reconciler will try it again
