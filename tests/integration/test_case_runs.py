"""The case_runs row: the version and the mirror digest a case's run has seen,
on the pass's database (SQLite or PostgreSQL)."""
from tests.builders import utc

NOW = utc(2026, 3, 11, 12)


def row(core, case_id="2026-00001"):
    with core.uow(read_only=True) as uow:
        found = uow.case_run_get(case_id)
        return found["synced_version"], found["mirror_digest"]


def write(core, fn):
    with core.uow() as uow:
        result = fn(uow)
        uow.commit()
        return result


def test_the_seen_version_never_moves_back_and_carries_its_digest(core):
    write(core, lambda uow: uow.case_run_record("2026-00001", "run-1", NOW))
    assert row(core) == (0, None)
    write(core, lambda uow: uow.case_run_synced("2026-00001", 3, "d3"))
    assert row(core) == (3, "d3")
    write(core, lambda uow: uow.case_run_synced("2026-00001", 2, "d2"))  # an older execution reports late
    assert row(core) == (3, "d3")
    write(core, lambda uow: uow.case_run_synced("2026-00001", 5))  # no digest (a finished run): the old one stays
    assert row(core) == (5, "d3")
    write(core, lambda uow: uow.case_run_synced("2026-00001", 5, "d5"))  # the same version fills its digest in
    assert row(core) == (5, "d5")


def test_marking_in_step_without_a_wake_is_a_compare_and_set(core):
    write(core, lambda uow: uow.case_run_record("2026-00001", "run-1", NOW))
    write(core, lambda uow: uow.case_run_synced("2026-00001", 3, "d3"))
    # The run wrote since the sync read (3, "d3"): the sync's mark is refused.
    write(core, lambda uow: uow.case_run_synced("2026-00001", 4, "d4"))
    assert write(core, lambda uow: uow.case_run_synced_unchanged("2026-00001", 6, 3, "d3")) is False
    assert row(core) == (4, "d4")
    # What the sync read is still there: marked, the digest kept.
    assert write(core, lambda uow: uow.case_run_synced_unchanged("2026-00001", 6, 4, "d4")) is True
    assert row(core) == (6, "d4")
    assert write(core, lambda uow: uow.case_run_synced_unchanged("2026-00001", 6, 6, "d4")) is False  # never the same version twice
    assert write(core, lambda uow: uow.case_run_synced_unchanged("2026-00001", 7, 6, "other")) is False
    assert row(core) == (6, "d4")
