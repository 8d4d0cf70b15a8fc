"""`python -m bench` (or `bash bench/run`): every benchmark, each beside its
peer in the same run, then bench/results/README.md, results.json and the plots.

    python -m bench                 # full sizes (about an hour on 2 cores)
    python -m bench --small         # small sizes, for developing the benchmarks
    python -m bench --only precision,restart
    python -m bench --no-pg         # SQLite only
    python -m bench --keep-nice     # never raise a process's priority (a soak test shares the machine)
    python -m bench --small --only open_cases --naive-runs 50   # the naive peer at full size, the rest small
    python -m bench --only officer_report   # Submit in the Prefect UI -> the service recorded, two busy loops beside
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.common import KEEP_NICE_ENV, MEASURED_NICE, ROOT, Workspaces, fsync_probe, PartialResult, machine, may_raise_priority, write_json

SCENARIOS = ("precision", "restart", "two_backstops", "sweep", "intake", "open_cases", "officer_report")

FULL = dict(precision_n=1000, precision_window=60, restart_n=100, restart_outage=600, two_n=1000, two_window=60,
            sweep_open=(1_000, 10_000, 100_000), sweep_due=1000, intake_n=2000, intake_batch=100,
            open_sizes=(1_000, 10_000), open_real=50, naive_n=50, report_n=40)
SMALL = dict(precision_n=100, precision_window=10, restart_n=20, restart_outage=600, two_n=100, two_window=10,
             sweep_open=(300, 3_000), sweep_due=100, intake_n=200, intake_batch=50,
             open_sizes=(200, 500), open_real=6, naive_n=6, report_n=8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="small sizes, for developing the benchmarks")
    parser.add_argument("--only", help=f"comma-separated: {','.join(SCENARIOS)}")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"), help="results folder")
    parser.add_argument("--work", help="scratch folder for the databases (default: a new folder under /tmp)")
    parser.add_argument("--keep-nice", action="store_true",
                        help="run every process at the nice level the command was started with (by default, as root, the "
                             "measured processes run at nice -10)")
    parser.add_argument("--naive-runs", type=int, metavar="N",
                        help=f"live runs of the naive peer in open_cases (default {FULL['naive_n']}, with --small {SMALL['naive_n']})")
    parser.add_argument("--quiet-load", type=float, default=3.0,
                        help="before each benchmark, wait for the 1-minute load average to fall below this (shared machines)")
    parser.add_argument("--quiet-wait", type=float, default=8.0, help="minutes to wait for that at most (then run anyway)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the figures of the benchmarks not run now from OUT/results.json, each with its own run's "
                             "command, start and commit (the report names every run)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("custody", "alembic"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    if args.keep_nice:
        os.environ[KEEP_NICE_ENV] = "1"  # read here and by every process the benchmarks start
    try:
        sizes = choose_sizes(args.small, args.naive_runs)
    except ValueError as exc:
        parser.error(str(exc))
    only = [s.strip() for s in args.only.split(",")] if args.only else list(SCENARIOS)
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"--only: unknown benchmark {sorted(unknown)[0]!r}; choose from {', '.join(SCENARIOS)}")
    out = Path(args.out)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="custody-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)  # PostgreSQL's own user must reach its data folder inside

    pg = None
    if not args.no_pg:
        from bench.pg import PgCluster
        pg = PgCluster(work / "pg")
        if pg.available:
            pg.start()
            pg.wait_ready()
        else:
            print("PostgreSQL binaries not found: SQLite only", file=sys.stderr)
            pg = None
    kinds = ["sqlite"] + (["postgresql"] if pg else [])
    spaces = Workspaces(work, pg)
    results: dict = {"command": "bash bench/run " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
                     "machine": machine(), "sizes": sizes,
                     "measured_nice": MEASURED_NICE if may_raise_priority() else os.getpriority(os.PRIO_PROCESS, 0),
                     "kinds": kinds, "quiet_load": args.quiet_load, "noise": {}, "scenarios": {}, "errors": {}}
    if pg:
        results["machine"]["postgresql"] = pg.version()
    try:
        for name in only:
            waited = wait_for_quiet(args.quiet_load, args.quiet_wait)
            print(f"== {name}", file=sys.stderr, flush=True)
            before = fsync_probe(work)
            started = time.monotonic()
            try:
                results["scenarios"][name] = run(name, spaces, kinds, sizes, work)
            except PartialResult as exc:  # one part failed: keep the figures of the others
                results["scenarios"][name] = exc.partial
                results["errors"][name] = traceback.format_exc()
                print(results["errors"][name], file=sys.stderr)
            except Exception:
                results["errors"][name] = traceback.format_exc()
                print(results["errors"][name], file=sys.stderr)
            finally:
                spaces.stop_all()
            results["noise"][name] = {"before": before, "after": fsync_probe(work), "seconds": time.monotonic() - started,
                                      "waited_for_quiet_s": waited}
            write_json(work / "results.partial.json", results)
    finally:
        spaces.stop_all()
        if pg:
            pg.stop()
    from bench.report import merge_previous, stamp_runs, write_report
    stamp_runs(results)
    if args.merge and (out / "results.json").exists():
        results = merge_previous(results, json.loads((out / "results.json").read_text()))
    write_report(results, out)
    if not args.work:  # the scratch databases (hundreds of MB); every figure is in the results
        shutil.rmtree(work, ignore_errors=True)
    print(f"results: {out / 'README.md'}", file=sys.stderr)
    return 1 if results["errors"] else 0


def choose_sizes(small: bool, naive_runs: int | None = None) -> dict:
    """The sizes of this run: full or small, the naive peer's runs overridden if asked."""
    sizes = dict(SMALL if small else FULL)
    if naive_runs is not None:
        if naive_runs < 1:
            raise ValueError(f"--naive-runs: must be at least 1, not {naive_runs}")
        sizes["naive_n"] = naive_runs
    return sizes


def wait_for_quiet(load: float, minutes: float) -> float:
    """Others share this machine: give their work a chance to finish first."""
    started = time.monotonic()
    while os.getloadavg()[0] >= load and time.monotonic() - started < minutes * 60:
        time.sleep(15)
    return time.monotonic() - started


def run(name: str, spaces: Workspaces, kinds: list[str], s: dict, work: Path) -> dict:
    if name == "precision":
        from bench.deadline import precision
        return {kind: precision(spaces, kind, s["precision_n"], s["precision_window"]) for kind in kinds}
    if name == "restart":
        from bench.deadline import restart
        return {kind: restart(spaces, kind, s["restart_n"], s["restart_outage"]) for kind in kinds}
    if name == "two_backstops":
        from bench.deadline import two_backstops
        return {kind: two_backstops(spaces, kind, s["two_n"], s["two_window"]) for kind in kinds}
    if name == "sweep":
        from bench.sweep import sweeps
        return {kind: sweeps(spaces, kind, s["sweep_open"], s["sweep_due"]) for kind in kinds}
    if name == "intake":
        from bench.intake import intake
        return {kind: intake(spaces, kind, s["intake_n"], s["intake_batch"]) for kind in kinds}
    if name == "open_cases":
        from bench.open_cases import open_cases
        return open_cases(spaces, s["open_sizes"], s["open_real"], s["naive_n"], work)
    if name == "officer_report":
        from bench.officer_report import officer_reports
        return {kind: officer_reports(spaces, kind, s["report_n"]) for kind in kinds}
    raise AssertionError(name)


if __name__ == "__main__":
    sys.exit(main())
