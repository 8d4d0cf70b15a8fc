"""Section 7 of the benchmark report (issue 7, item 3): every cost measured at
two populations gets a verdict, and a cost that grows faster than the waiting
cases is named."""
from bench.report import _growth, _verdict, markdown

MiB = 2 ** 20


def ui(p50: float) -> dict:
    return {q: {"p50": p50, "p95": p50 * 2, "failed": 0} for q in ("paginate", "paginate suspended", "count")}


def row(open_: int, *, custody_per_case: float, prefect_per_case: float, ui_p50: float, constructed: int) -> dict:
    return {"open": open_, "constructed": constructed, "custody_intake_s": constructed * 0.01,
            "prefect_construct_s": constructed * 0.02, "rss_bytes": 700 * MiB, "rss_steady_bytes": 600 * MiB, "processes": 3,
            "flow_run_processes": 0, "custody_db_bytes": 1_000_000 + custody_per_case * open_,
            "prefect_db_bytes": 2_000_000 + prefect_per_case * open_, "ui_list_ms": ui(ui_p50), "reconcile_query_ms": 1.0,
            "idle_cpu_percent": 10.0}


def results(naive: dict | None = None, ui_large: float = 20.0, prefect_large: float = 3000) -> dict:
    ours = {"real_cases": 50, "real_s": 80, "real_cpu_s_per_case": 2.8, "acceptance_to_run": {}, "api_read_failures": [],
            "baseline": {"custody_db_bytes": 1_000_000, "prefect_db_bytes": 2_000_000, "rss_bytes": 500 * MiB, "processes": 3,
                         "ui_list_ms": ui(5), "reconcile_query_ms": 0.5},
            "rows": [row(1000, custody_per_case=5000, prefect_per_case=3000, ui_p50=10, constructed=950),
                     row(10000, custody_per_case=5100, prefect_per_case=prefect_large, ui_p50=ui_large, constructed=9000)]}
    return {"command": "bash bench/run", "machine": {}, "kinds": ["sqlite"], "errors": {}, "noise": {},
            "scenarios": {"open_cases": {"ours": ours, "naive": naive or {"runs": 50, "error": "ReadTimeout: timed out"}}}}


def line(lines: list[str], label: str) -> str:
    return next(x for x in lines if x.startswith(f"| {label}"))


def test_verdicts_against_a_tenfold_population():
    assert _verdict(1.2, 10) == "flat"
    assert _verdict(4.0, 10) == "sublinear"
    assert _verdict(10.0, 10) == "linear"
    assert _verdict(12.9, 10) == "linear"
    assert "faster than linear" in _verdict(13.1, 10)


def test_every_open_cases_cost_has_a_row_and_flat_bytes_per_case_are_linear():
    lines = _growth(results())
    for label in ("whole-system memory (custody up", "whole-system memory, with the interval", "processes",
                  "custody database, bytes per open case", "Prefect database, bytes per open case",
                  "creating the cases", "creating the runs", "Prefect UI run list (first page + total), p50",
                  "Prefect UI run list (first page + total), p95", "Prefect UI suspended-runs list, p50", "Prefect run count, p50",
                  "bridge's catch-up query", "idle CPU"):
        assert line(lines, label)
    assert "linear (per case: flat)" in line(lines, "custody database, bytes per open case")
    assert "| sublinear |" in line(lines, "Prefect UI run list (first page + total), p50")  # 10 → 20 ms for ten times the runs
    assert "| flat |" in line(lines, "processes")
    assert "**Nothing grew faster than linearly in this run.**" in lines


def test_a_cost_growing_faster_than_the_cases_is_named():
    lines = _growth(results(ui_large=400.0, prefect_large=9000))  # ×40 for ×10 runs; ×3 bytes per case
    assert "faster than linear" in line(lines, "Prefect UI run list (first page + total), p50")
    assert "faster than linear" in line(lines, "Prefect database, bytes per open case")
    named = next(x for x in lines if x.startswith("**Faster than linear in this run:**"))
    assert "Prefect UI run list (first page + total), p50" in named and "Prefect database, bytes per open case" in named
    assert "custody database, bytes per open case" not in named


def test_a_failed_naive_peer_is_reported_beside_our_figures():
    text = markdown(results(), {})
    assert "**The naive peer failed in this run** (50 live runs): ReadTimeout: timed out" in text
    assert "| custody | 10,000 |" in text


def sweep_results(db_ms: float, server_ms: float | None) -> dict:
    one = {"db_ms": db_ms, "server_ms": server_ms, "statements": 62, "commits": 10, "wall_ms": 300.0,
           "by_kind_ms": {"insert outbox": db_ms / 2, "update cases": db_ms / 2}, "by_kind_count": {"insert outbox": 10, "update cases": 10}}
    sweep = {"postgresql": {"rows": [{"open": 100_000, "due": 1_000, "pass": one, "cli": {"wall_ms": 900.0},
                                      "queries_ms": {"due query": 2.0, "next-due query": 0.4}}]}}
    return {"command": "bash bench/run", "machine": {}, "kinds": ["postgresql"], "errors": {}, "noise": {},
            "scenarios": {"sweep": sweep}}


def report_lines(db_ms: float, server_ms: float | None) -> list[str]:
    return markdown(sweep_results(db_ms, server_ms), {}).splitlines()


def test_a_sweep_is_judged_on_the_driver_time_and_shows_the_server_time_beside_it():
    under = line(report_lines(80.0, 40.0), "Backstop sweep (postgresql)")
    assert "80.0 ms (server 40.0 ms)" in under and under.endswith("| yes |")
    server_only = line(report_lines(150.0, 75.0), "Backstop sweep (postgresql)")
    assert "150 ms (server 75.0 ms)" in server_only and "**no**: the server's own time only" in server_only
    neither = line(report_lines(250.0, 120.0), "Backstop sweep (postgresql)")
    assert neither.endswith("| **no** |")
    unknown = line(report_lines(150.0, None), "Backstop sweep (postgresql)")
    assert "server" not in unknown and unknown.endswith("| **no** |")
    table = line(report_lines(150.0, 75.0), "postgresql | 100,000 | 1,000 |")
    assert "| **150 ms** | 75.0 ms |" in table


def test_merging_keeps_the_benchmarks_not_run_again_with_their_own_run():
    from bench.report import merge_previous, stamp_runs
    earlier = sweep_results(150.0, 75.0)
    earlier["machine"] = {"started_at": "2026-11-29T14:06:10Z", "custody_commit": "e6c96e6"}
    earlier["scenarios"]["intake"] = {"sqlite": {"rows": []}}
    probe = {"commit_ms_p50": 0.2, "commit_ms_p99": 0.3, "load1": 0.5}
    earlier["noise"] = {name: {"before": probe, "after": probe, "seconds": s} for name, s in (("sweep", 60), ("intake", 170))}
    now = sweep_results(80.0, 40.0)
    now.update(command="bash bench/run --only sweep --merge", machine={"started_at": "2026-11-29T16:40:00Z", "custody_commit": "6cea784"},
               kinds=["sqlite", "postgresql"])
    stamp_runs(now)
    merged = merge_previous(now, earlier)
    assert merged["scenarios"]["sweep"]["postgresql"]["rows"][0]["pass"]["db_ms"] == 80.0  # this run's figures win
    assert merged["scenarios"]["intake"] == {"sqlite": {"rows": []}}
    assert merged["noise"]["intake"]["seconds"] == 170 and "intake" not in now["scenarios"]  # the run itself is unchanged
    assert merged["runs"]["sweep"]["commit"] == "6cea784" and merged["runs"]["intake"]["commit"] == "e6c96e6"
    assert merged["kinds"] == ["sqlite", "postgresql"]
    text = markdown(merged, {})
    assert "| intake | 2026-11-29T14:06:10Z | e6c96e6 | `bash bench/run` |" in text
    assert "| sweep | 2026-11-29T16:40:00Z | 6cea784 |" in text
    assert "more than one run" not in markdown(now, {})  # one run: no table of runs


def naive(database: str | None) -> dict:
    found = {"runs": 50, "poll_s": 15.0, "pace_s": 0.5, "baseline_rss_bytes": 400 * MiB, "baseline_idle_cpu_percent": 3.0,
             "start_s": 60.0, "start_cpu_s_per_run": 2.5, "rss_bytes": 6_000 * MiB, "processes": 53, "rss_per_run": 112 * MiB,
             "idle_cpu_percent": 20.0, "api_read_failures": [], "ui_list_ms": ui(15),
             "extrapolated": [{"open": 1000, "rss_bytes": 112_000 * MiB, "processes": 1002, "start_cpu_s": 2500.0, "idle_cpu_percent": 300.0}]}
    if database:
        found["prefect_database"] = database
    if database == "postgresql":
        found.update(postgres_baseline_rss_bytes=60 * MiB, postgres_rss_bytes=90 * MiB, postgres_processes=12)
    return found


def test_the_report_says_which_database_the_naive_peer_s_server_used():
    text = markdown(results(naive("postgresql")), {})
    assert "| naive (measured, Prefect on PostgreSQL) | 50 |" in text
    assert "keeps its runs in **PostgreSQL**" in text
    assert "held 60 MiB before the runs and 90 MiB in 12 processes" in text
    sqlite = markdown(results(naive("sqlite")), {})
    assert "| naive (measured, Prefect on SQLite) | 50 |" in sqlite
    assert "keeps its runs in **SQLite**" in sqlite and "**PostgreSQL**" not in sqlite


def test_results_from_before_the_database_was_recorded_read_as_sqlite():
    assert "| naive (measured, Prefect on SQLite) | 50 |" in markdown(results(naive(None)), {})


def test_a_failed_naive_peer_says_which_database_its_server_was_on():
    text = markdown(results({"runs": 50, "prefect_database": "postgresql", "error": "RuntimeError: timed out"}), {})
    assert "**The naive peer failed in this run** (50 live runs, its Prefect server on PostgreSQL): RuntimeError: timed out" in text


def test_the_report_says_how_long_each_reading_waited_for_the_interval_runs():
    r = results(naive("postgresql"))
    rows = r["scenarios"]["open_cases"]["ours"]["rows"]
    rows[0]["steady_wait"] = {"waited_s": 4.5, "flow_runs_seen": 1, "flow_runs_left": 0}
    rows[1]["steady_wait"] = {"waited_s": 120.0, "flow_runs_seen": 5, "flow_runs_left": 2}
    text = markdown(r, {})
    assert "1,000 open: 4.5 s, 1 run seen; 10,000 open: 120 s, 5 runs seen, **2 still alive** when the wait ran out." in text
    assert "waiting at most 120 s" in text


def test_a_merged_precision_without_its_raw_lateness_keeps_that_runs_plot(tmp_path):
    import pytest
    pytest.importorskip("matplotlib")  # the `bench` extra
    from bench.report import _plots
    (tmp_path / "precision.png").write_bytes(b"the earlier run's plot")
    kept = {"ours": {"record_ms": {"p99": 0.02}}, "apscheduler": {"record_ms": {"p99": 8.0}}}  # as results.json holds it
    made = _plots({"scenarios": {"precision": {"sqlite": kept}}}, tmp_path)
    assert made["precision"] == "precision.png"
    assert (tmp_path / "precision.png").read_bytes() == b"the earlier run's plot"
