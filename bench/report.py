"""bench/results/: README.md (the tables), results.json (every number), plots."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import fmt, write_json

MiB = 2 ** 20


def write_report(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(results, out)
    slim = _without_raw(results)
    write_json(out / "results.json", slim)
    (out / "README.md").write_text(markdown(slim, plots))


def stamp_runs(results: dict[str, Any]) -> None:
    """Each benchmark of this run remembers the run it came from."""
    run = {"command": results["command"], "started_at": results["machine"].get("started_at"),
           "commit": results["machine"].get("custody_commit")}
    results["runs"] = {name: dict(run) for name in results["scenarios"]}


def merge_previous(results: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """This run's figures, and those of every benchmark it did not run from
    an earlier report (with that run's stamp): each benchmark still compares
    systems measured in one run, one beside the other."""
    merged = {**results, "scenarios": dict(results["scenarios"]), "noise": dict(results["noise"]),
              "errors": dict(results["errors"]), "runs": dict(results.get("runs", {}))}
    earlier = {"command": previous.get("command"), "started_at": _get(previous, "machine", "started_at"),
               "commit": _get(previous, "machine", "custody_commit")}
    for name, figures in previous.get("scenarios", {}).items():
        if name in merged["scenarios"]:
            continue
        merged["scenarios"][name] = figures
        merged["runs"][name] = _get(previous, "runs", name, default=earlier)
        for part in ("noise", "errors"):
            if name in previous.get(part, {}):
                merged[part][name] = previous[part][name]
    merged["kinds"] = list(dict.fromkeys([*results["kinds"], *previous.get("kinds", [])]))
    return merged


def _runs(r: dict[str, Any]) -> list[str]:
    """Which run each benchmark's figures come from, when they are not all one."""
    runs = r.get("runs", {})
    if len({(v.get("command"), v.get("started_at")) for v in runs.values()}) <= 1:
        return []
    out = ["The benchmarks below come from more than one run of the command (`--merge` kept the figures of those not run "
           "again); within each benchmark, every system was measured in the same run. The machine and software above are "
           "the latest run's.", "", "| benchmark | run started | custody commit | command |", "|---|---|---|---|"]
    for name, run in runs.items():
        out.append(f"| {name} | {run.get('started_at')} | {run.get('commit')} | `{run.get('command')}` |")
    return out + [""]


def _without_raw(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_raw(v) for k, v in value.items() if not k.startswith("raw_")}
    if isinstance(value, list):
        return [_without_raw(v) for v in value]
    return value


def _get(d: Any, *path: Any, default: Any = None) -> Any:
    for key in path:
        if isinstance(d, dict) and key in d:
            d = d[key]
        elif isinstance(d, list) and isinstance(key, int) and -len(d) <= key < len(d):
            d = d[key]
        else:
            return default
    return d


def _ms(s: dict | None, key: str) -> str:
    return fmt(_get(s, key), 2) if s and s.get("n") else "-"


def markdown(r: dict[str, Any], plots: dict[str, str]) -> str:
    m = r["machine"]
    lines = [
        "# custody benchmarks",
        "",
        "Each benchmark's figures below were measured in one run of one command, each system beside its peer on the same machine,",
        "one after the other (never at the same time). Regenerate with:",
        "",
        f"    {r['command']}",
        "",
        f"Run started {m.get('started_at')} on a shared development machine, where other work may run meanwhile.",
        "Absolute times move with that load; compare each figure with its peer from the same run. The noise probe",
        "(one durable SQLite commit, and the load average, just before and after each benchmark) is in the last section.",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {m.get('cpu')} ({m.get('cores')} cores), {m.get('memory')} |",
        f"| OS | {m.get('os')}, Linux {m.get('kernel')}; disk {m.get('disk')} |",
        f"| software | Python {m.get('python')}, SQLite {m.get('sqlite')}, {m.get('postgresql', 'PostgreSQL: not run')}, "
        f"Prefect {m.get('prefect')}, SQLAlchemy {m.get('sqlalchemy')}, APScheduler {m.get('apscheduler')}, psycopg {m.get('psycopg')} |",
        f"| custody | commit {m.get('custody_commit')} |",
        "",
        f"The processes whose timing is measured (`custody up`, the APScheduler peer and the naive peer alike) run at nice "
        f"{r.get('measured_nice', -10)} so that",
        "the figures describe the systems rather than their queue for a CPU on this shared machine; the set-up work",
        "(writing the populations) does not. PostgreSQL is a private cluster (Debian's PostgreSQL, default settings:",
        "fsync and synchronous_commit on) started and stopped by the command.",
        "",
    ]
    lines += _runs(r)
    if r.get("errors"):
        lines += ["**Benchmarks that failed in their run:** " + ", ".join(sorted(r["errors"])) + " (tracebacks in results.json).", ""]
    s = r["scenarios"]
    lines += _summary(r)
    if "precision" in s:
        lines += _precision(s["precision"], plots)
    if "restart" in s:
        lines += _restart(s["restart"])
    if "two_backstops" in s:
        lines += _two(s["two_backstops"])
    if "open_cases" in s:
        lines += _open(s["open_cases"], plots)
    if "intake" in s:
        lines += _intake(s["intake"])
    if "sweep" in s:
        lines += _sweep(s["sweep"], plots)
    if "officer_report" in s:
        lines += _officer_report(s["officer_report"])
    lines += _growth(r)
    lines += _noise(r)
    return "\n".join(lines) + "\n"


# --- sections ----------------------------------------------------------------------------------------

def _summary(r: dict[str, Any]) -> list[str]:
    s = r["scenarios"]
    rows = []
    for kind in r["kinds"]:
        p = _get(s, "precision", kind)
        if p:
            o, a = p["ours"], p["apscheduler"]
            ok = o["missed"] == 0 and (o["record_ms"].get("p99") or 1e9) <= 2 and (o["record_ms"].get("max") or 1e9) <= 20
            rows.append([f"Deadline precision ({kind}), lateness p99 / max", f"{_ms(o['record_ms'], 'p99')} / {_ms(o['record_ms'], 'max')} ms, "
                         f"{o['missed']} missed", f"{_ms(a['record_ms'], 'p99')} / {_ms(a['record_ms'], 'max')} ms, {a['missed']} missed",
                         "p99 ≤ 2 ms, max ≤ 20 ms, none missed", "yes" if ok else "**no**"])
        rs = _get(s, "restart", kind)
        if rs:
            o, a = rs["ours"], rs["apscheduler_default"]
            ok = _get(o, "after_start_ms", "within_1s") == rs["n"]
            rows.append([f"Restart after 10 min down ({kind}), fired within 1 s of start",
                         f"{_get(o, 'after_start_ms', 'within_1s', default=0)} of {rs['n']}",
                         f"{_get(a, 'after_start_ms', 'n', default=0)} of {rs['n']} fired (default settings)",
                         "all within 1 s", "yes" if ok else "**no**"])
        tb = _get(s, "two_backstops", kind)
        if tb:
            o = tb["ours"]
            ok = o["orders_per_case"] == {"1": tb["n"]} and o["outbox_rows_per_case"] == [3]
            peer = tb.get("apscheduler_two_schedulers", {})
            rows.append([f"Two backstops at once ({kind}), release orders per case", f"exactly 1 for {o['orders_per_case'].get('1', 0)} of {tb['n']}",
                         f"jobs run twice: {peer.get('jobs_run_twice', '-')} of {tb['n']}", "each exactly once", "yes" if ok else "**no**"])
        sw = _get(s, "sweep", kind, "rows", -1)
        if sw:
            rows.append([f"Backstop sweep ({kind}), {sw['open']:,} open / {sw['due']:,} due, database time", *_sweep_verdict(sw["pass"])])
    oc = _get(s, "open_cases", "ours", "rows", -1)
    if oc:
        naive = _get(s, "open_cases", "naive", "extrapolated", -1, default={})
        rows.append([f"{oc['open']:,} open cases, memory of the whole system", f"{oc['rss_bytes'] / MiB:,.0f} MiB in {oc['processes']} processes "
                     f"({oc.get('flow_run_processes', 0)} of them interval flow runs)",
                     f"{naive.get('rss_bytes', 0) / MiB:,.0f} MiB in {naive.get('processes', '-'):,} processes (extrapolated)" if naive else "-",
                     "no process per case; 10,000 on 2 cores", "yes" if oc["processes"] < 10 else "**no**"])
    for kind in r["kinds"]:
        rep = _get(s, "officer_report", kind)
        if rep and rep.get("custody_ms", {}).get("n"):
            o, peer = rep["custody_ms"], rep["run_ms"]
            ok = (o.get("p99") or 1e9) <= 1000 and rep["held"] == rep["n"]
            rows.append([f"Officer's form ({kind}), Submit → service recorded, p50 / p99 / max, {rep['busy_loops']} busy loops beside",
                         f"{_sec_s(o, 'p50')} / {_sec_s(o, 'p99')} / {_sec_s(o, 'max')} s, {rep['held']} of {rep['n']} held",
                         f"{_sec_s(peer, 'p50')} / {_sec_s(peer, 'p99')} / {_sec_s(peer, 'max')} s or more (the run's own process)",
                         "p99 ≤ 1 s", "yes" if ok else "**no**"])
    if not rows:
        return []
    out = ["## Summary", "", "| benchmark | custody | peer | goal | met |", "|---|---|---|---|---|"]
    out += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return out + [""]


def _precision(p: dict[str, Any], plots: dict[str, str]) -> list[str]:
    out = ["## 1. Deadline precision", ""]
    first = next(iter(p.values()))
    out += [f"{first['n']:,} holds whose release-order times fall at random instants within the same {first['window_s']:.0f} s "
            "(the same instants, relative to the window, for both systems). Lateness of each release order after its due time, "
            "read from the database afterwards: the case's `release_ordered_at` (record) and the first of its outbox rows' "
            "`created_at` (outbox). Ours is `custody up --no-prefect`, fed through its own POST /events; its backstop wakes at "
            "the next due instant it reads. The peer is APScheduler with its SQLAlchemyJobStore in the same database, one date "
            "job per release order running the same compare-and-set step for that case (`bench/aps_job.py`); its job start "
            "(when APScheduler called the job) is shown too. *Durable* is when the order's transaction had committed "
            "(fsync included): for ours the backstop's log line written just after the commit (millisecond resolution), "
            "for the peer the job's return.", "",
            "| database | system | orders | missed | record p50 | p99 | max | outbox p50 | p99 | max | durable p50 | p99 | max | job start p50 | p99 | max |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind, v in p.items():
        for label, key in (("custody", "ours"), ("APScheduler 3", "apscheduler")):
            x = v[key]
            js, du = x.get("job_start_ms"), x.get("durable_ms")
            out.append(f"| {kind} | {label} | {x['record_ms'].get('n', 0)} | {x['missed']} | {_ms(x['record_ms'], 'p50')} | "
                       f"{_ms(x['record_ms'], 'p99')} | {_ms(x['record_ms'], 'max')} | {_ms(x['outbox_ms'], 'p50')} | "
                       f"{_ms(x['outbox_ms'], 'p99')} | {_ms(x['outbox_ms'], 'max')} | {_ms(du, 'p50')} | {_ms(du, 'p99')} | {_ms(du, 'max')} | "
                       f"{_ms(js, 'p50')} | {_ms(js, 'p99')} | {_ms(js, 'max')} |")
    out += ["", "Times in milliseconds. Each release order is given once (" +
            ", ".join(f"{kind}: custody {v['ours']['orders_per_case']}, APScheduler {v['apscheduler']['orders_per_case']}" for kind, v in p.items())
            + " release orders per case → number of cases).", ""]
    if "precision" in plots:
        out += [f"![lateness of release orders]({plots['precision']})", ""]
    return out


def _restart(p: dict[str, Any]) -> list[str]:
    first = next(iter(p.values()))
    out = ["## 2. Restart after an outage", "",
           f"Both systems stopped for {first['outage_s'] / 60:.0f} minutes across {first['n']} due times, then started. Nobody "
           "waits ten minutes: the due times are placed in the past, spread evenly over the ten minutes before the start, and "
           "the holds (and the peer's jobs) are written as they would have been before the outage, with the clock set a "
           "minute before the first due time (the peer's jobs are stored by a paused scheduler that is then shut down). At "
           "start-up that is exactly what a ten-minute outage leaves in the database. \"After start\" counts from launching "
           "the process (`custody up`, or the scheduler's process) to each release order's record.", "",
           "| database | system | fired | within 1 s of start | after start p50 | max | lateness after due time max |",
           "|---|---|---|---|---|---|---|"]
    for kind, v in p.items():
        for label, key in (("custody", "ours"), ("APScheduler 3, default settings (misfire_grace_time 1 s)", "apscheduler_default"),
                           ("APScheduler 3, misfire_grace_time=None", "apscheduler_no_misfire_limit")):
            x = v.get(key)
            if not x:
                continue
            a = x.get("after_start_ms", {})
            out.append(f"| {kind} | {label} | {x['record_ms'].get('n', 0)} of {x['cases']} | {a.get('within_1s', 0)} | "
                       f"{fmt(a.get('p50'))} ms | {fmt(a.get('max'))} ms | {fmt(_get(x, 'record_ms', 'max'), 0)} ms |")
    return out + [""]


def _two(p: dict[str, Any]) -> list[str]:
    first = next(iter(p.values()))
    out = ["## 3. Two backstops at once", "",
           f"{first['n']:,} holds due within {first['window_s']:.0f} s, two `custody up --no-prefect` processes on the same database "
           "(two machines in a real deployment). Each release order must be given exactly once, with its three outbox rows. "
           "The peer cannot share a job store: two APScheduler processes on one store (jobs stored beforehand) each run the "
           "jobs; the job's own compare-and-set keeps the orders single, but the job runs twice.", "",
           "| database | system | release orders per case | outbox rows per case | orders by each process | lateness p50 | p99 | max | missed |",
           "|---|---|---|---|---|---|---|---|---|"]
    for kind, v in p.items():
        o = v["ours"]
        out.append(f"| {kind} | custody ×2 | {o['orders_per_case']} | {o['outbox_rows_per_case']} | {o.get('orders_by_process')} | "
                   f"{_ms(o['record_ms'], 'p50')} | {_ms(o['record_ms'], 'p99')} | {_ms(o['record_ms'], 'max')} | {o['missed']} |")
        a = v.get("apscheduler_two_schedulers")
        if a:
            out.append(f"| {kind} | APScheduler ×2 | {a['orders_per_case']} | {a['outbox_rows_per_case']} | job runs {a.get('job_runs_by_process')}, "
                       f"{a.get('jobs_run_twice')} jobs ran twice | {_ms(a['record_ms'], 'p50')} | {_ms(a['record_ms'], 'p99')} | "
                       f"{_ms(a['record_ms'], 'max')} | {a['missed']} |")
    return out + ["", "Release orders per case → number of cases; times in milliseconds.", ""]


def _open(p: dict[str, Any], plots: dict[str, str]) -> list[str]:
    o, n = p.get("ours", {}), p.get("naive", {})
    out = ["## 4. Open cases", ""]
    rows = o.get("rows", [])
    if o:
        from bench.open_cases import REAL_PACE_S, WHAT_IS_REAL
        out += [WHAT_IS_REAL, ""]
        atr = o.get("acceptance_to_run", {})
        cpu = o.get("real_cpu_s_per_case")
        out += [f"**Real path**, {o['real_cases']} cases (a detainer every {REAL_PACE_S} s through POST /events): all runs "
                f"suspended {fmt(o.get('real_s'))} s after the first post; **{fmt(cpu, 2)} CPU-seconds per case run** (the whole "
                f"system: mostly the run's own Python process starting), so 10,000 real runs would take "
                f"{fmt(cpu * 10000 / 3600 if cpu else None)} CPU-hours to start ({fmt(cpu * 10000 / 3600 / 2 if cpu else None)} h "
                f"on these 2 cores), once, as cases arrive; afterwards they cost nothing while suspended.", "",
                f"**From a detainer's acceptance to its case run existing in Prefect**: p50 "
                f"{fmt(_get(atr, 'to_run_exists_ms', 'p50'))} ms, p95 {fmt(_get(atr, 'to_run_exists_ms', 'p95'))} ms "
                f"(the bridge creates it after the commit); to the run started, suspended and waiting: p50 "
                f"{fmt(_sec(_get(atr, 'to_suspended_ms', 'p50')))} s, p95 {fmt(_sec(_get(atr, 'to_suspended_ms', 'p95')))} s "
                "(the serve process polls for runs every 3 s, then starts a Python process per run).", ""]
        per_case = [f"Prefect database **{fmt(_get(o, 'bytes_per_case_real', 'prefect'), 0)} B** per real run (its states, task "
                    "runs, logs, events and timeline artifact)"]
        if len(rows) >= 2 and rows[-1]["open"] > rows[0]["open"]:
            a, b = rows[0], rows[-1]
            grown = (b["custody_db_bytes"] - a["custody_db_bytes"]) / (b["open"] - a["open"])
            per_run = (b["prefect_db_bytes"] - a["prefect_db_bytes"]) / (b["open"] - a["open"])
            per_case = [f"custody database **{fmt(grown, 0)} B** per open case (from {a['open']:,} to {b['open']:,} real cases: "
                        "the case, its detainer, booking, inbox event, audit entries and notices)"] + per_case + [
                        f"{fmt(per_run, 0)} B per constructed run"]
        out += ["**Bytes per open case** (tables and indexes, SQLite `dbstat`): " + "; ".join(per_case) + ".", ""]
    out += ["| system | open cases | memory (RSS, whole system) | of which flow-run processes | processes | idle CPU | custody DB | Prefect DB | time to create | UI run list p50 / p95 | suspended-runs list p50 / p95 | run count p50 |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    base = o.get("baseline")
    if base:
        out.append(_open_row("custody (empty)", 0, base, None))
    for row in rows:
        retried = _get(row, "prefect_construct_retries", "retries")
        created = (f"cases {fmt(row.get('custody_intake_s'))} s (real, batches of 500) + runs {fmt(row.get('prefect_construct_s'))} s "
                   "(constructed" + (f"; {retried} requests retried after a busy answer" if retried else "") + ")"
                   ) if row.get("constructed") else "-"
        out.append(_open_row("custody", row["open"], row, created))
    if n.get("error"):
        out += ["", f"**The naive peer failed in this run** ({n['runs']} live runs"
                + (f", its Prefect server on {NAIVE_DATABASE[n['prefect_database']]}" if n.get("prefect_database") in NAIVE_DATABASE else "")
                + f"): {n['error']}"]
    elif n:
        out.append(f"| naive (measured, Prefect on {NAIVE_DATABASE.get(n.get('prefect_database'), 'SQLite')}) | {n['runs']} | {n['rss_bytes'] / MiB:,.0f} MiB | - | {n['processes']} | {fmt(n.get('idle_cpu_percent'))} % | - | - | "
                   f"{fmt(n.get('start_s'))} s ({fmt(n.get('start_cpu_s_per_run'), 2)} CPU-s per run) | "
                   f"{fmt(_get(n, 'ui_list_ms', 'paginate', 'p50'))} / {fmt(_get(n, 'ui_list_ms', 'paginate', 'p95'))} ms | - | - |")
        for e in n.get("extrapolated", []):
            out.append(f"| naive (extrapolated) | {e['open']:,} | {e['rss_bytes'] / MiB:,.0f} MiB | - | {e['processes']:,} | {fmt(e['idle_cpu_percent'])} % | - | - | "
                       f"{fmt(e['start_cpu_s'] / 3600, 2)} CPU-hours to start | - | - | - |")
        out += ["", f"The naive design: one flow run per case that stays alive, polling its case every {fmt(n.get('poll_s', 15), 0)} s; "
                f"measured at {n['runs']} live runs, created one every {n.get('pace_s', '-')} s as our real path receives its detainers "
                f"({fmt(n['rss_per_run'] / MiB)} MiB and {fmt(n.get('start_cpu_s_per_run'), 2)} CPU-s to start, each; "
                f"idle CPU {fmt(n.get('baseline_idle_cpu_percent'))} % before the runs), extrapolated linearly. This machine has 2 cores "
                "and 24 GiB: 1,000 of them do not fit.", "", _naive_database(n)]
    failed = [(label, len(x.get("api_read_failures", []))) for label, x in (("custody", o), ("naive", n)) if x]
    ui_failed = [(label, sum(_get(row, "ui_list_ms", q, "failed", default=0)
                             for row in rows_ for q in ("paginate", "paginate suspended", "count")))
                 for label, rows_ in (("custody", [o.get("baseline", {})] + rows), ("naive", [n]))]
    if any(count for _, count in failed) or any(count for _, count in ui_failed):
        out += ["", "**The Prefect API did not always answer in time** (the machine was loaded): "
                + "; ".join(f"{label}: {count} of the benchmark's own reads failed even after the client's retries (waited again)"
                            for label, count in failed if count)
                + ("; " if any(c for _, c in failed) and any(c for _, c in ui_failed) else "")
                + "; ".join(f"{label}: {count} UI-list requests unanswered within 120 s or answered 503 (asked again; not in the times)"
                            for label, count in ui_failed if count) + "."]
    out += ["", "Idle CPU is the whole system over a minute with nothing arriving. In ours it is mostly the three interval "
            "deployments `custody up` serves (backstop, reconcile and relay, each a new flow-run process every minute, about "
            "2 CPU-s each on this machine) and the Prefect server handling them; it does not depend on the number of waiting "
            "cases. The \"flow-run processes\" column is those interval runs alive at the moment of the reading.", ""]
    waits = _steady_waits(o)
    if waits:
        out += [waits, ""]
    if "open" in plots:
        out += [f"![memory by open cases]({plots['open']})", ""]
    return out


NAIVE_DATABASE = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}


def _naive_database(n: dict[str, Any]) -> str:
    """Which database the peer's Prefect server used, and what of it the figures hold."""
    if n.get("prefect_database") == "postgresql":
        pg = n.get("postgres_rss_bytes")
        return ("The naive peer's Prefect server keeps its runs in **PostgreSQL** (asyncpg; a database of this run's own "
                "cluster), the setup Prefect recommends beyond light load. On its default SQLite, a server with about 50 live "
                "runs stops answering altogether, even /api/health, with nothing to do: on SQLite, Prefect 3.9 lets at most 100 "
                "requests in at once (its RequestLimitMiddleware), a websocket counts as a request for as long as it is open, "
                "and each live run keeps two open (the events it sends, and the watch for its own suspension). Its idle CPU "
                "includes the PostgreSQL "
                "server's; its memory does not (the PostgreSQL processes held "
                + (f"{n.get('postgres_baseline_rss_bytes', 0) / MiB:,.0f} MiB before the runs and {pg / MiB:,.0f} MiB in "
                   f"{n.get('postgres_processes', '-')} processes with them, resident, shared buffers counted once per process)."
                   if pg is not None else "an unmeasured amount).")
                + " Ours keeps its Prefect server on SQLite, as `custody up` starts it.")
    return ("The naive peer's Prefect server keeps its runs in **SQLite** (Prefect's default; this run had no PostgreSQL "
            "cluster), as ours does.")


def _steady_waits(o: dict[str, Any]) -> str:
    """How long each of our readings waited for the interval runs to end (bench/open_cases.py: wait_for_long_lived)."""
    readings = [("empty", o.get("baseline", {})), (f"after the {o.get('real_cases', '-')} real runs", o.get("after_real", {}))]
    readings += [(f"{row['open']:,} open", row) for row in o.get("rows", [])]
    parts = []
    for label, row in readings:
        w = row.get("steady_wait")
        if w:
            parts.append(f"{label}: {fmt(w['waited_s'])} s, {w['flow_runs_seen']} run{'s' if w['flow_runs_seen'] != 1 else ''} seen"
                         + (f", **{w['flow_runs_left']} still alive** when the wait ran out" if w["flow_runs_left"] else ""))
    if not parts:
        return ""
    from bench.open_cases import STEADY_WAIT_S
    return ("Memory and processes are read once no flow-run process is alive (waiting at most "
            f"{fmt(STEADY_WAIT_S, 0)} s), so that a run starting or exiting at that instant is not counted as the system's own; waited " + "; ".join(parts) + ".")


def _sec(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _open_row(label: str, size: int, row: dict, created: str | None) -> str:
    ui = row.get("ui_list_ms", {})
    steady = row.get("rss_steady_bytes")
    runs = "-" if steady is None else f"{(row['rss_bytes'] - steady) / MiB:,.0f} MiB ({row.get('flow_run_processes', 0)})"
    return (f"| {label} | {size:,} | {row['rss_bytes'] / MiB:,.0f} MiB | {runs} | {row['processes']} | "
            f"{fmt(row.get('idle_cpu_percent'))} % | {row['custody_db_bytes'] / MiB:,.1f} MiB | {row['prefect_db_bytes'] / MiB:,.1f} MiB | "
            f"{created or '-'} | {fmt(_get(ui, 'paginate', 'p50'))} / {fmt(_get(ui, 'paginate', 'p95'))} ms | "
            f"{fmt(_get(ui, 'paginate suspended', 'p50'))} / {fmt(_get(ui, 'paginate suspended', 'p95'))} ms | {fmt(_get(ui, 'count', 'p50'))} ms |")


def _intake(p: dict[str, Any]) -> list[str]:
    out = ["## 5. Intake", "",
           "Events accepted per second through POST /events of `custody up --no-prefect`, durable before the answer "
           "(SQLite WAL with synchronous=FULL; PostgreSQL defaults). Each case is two events (the detainer, then the release "
           "authorisation, which starts the hold and writes its notices). Single: one event per request, one sender, or four "
           "at once. Batched: arrays, decided event by event, one commit per request. Measured with 1,000 and 10,000 cases "
           "already open. The time from a detainer's acceptance to its case run in Prefect is in section 4.", "",
           "| database | open before | single, 1 sender | single, 4 senders | batched | request p50 (single, 1 sender) |",
           "|---|---|---|---|---|---|"]
    for kind, v in p.items():
        for row in v["rows"]:
            batch_key = next(k for k in row if k.startswith("batches"))
            out.append(f"| {kind} | {row['background_open']:,} | {fmt(row['single, 1 client']['events_per_s'])} /s | "
                       f"{fmt(row['single, 4 clients']['events_per_s'])} /s | {fmt(row[batch_key]['events_per_s'])} /s ({batch_key}) | "
                       f"{fmt(_get(row, 'single, 1 client', 'request_ms', 'p50'))} ms |")
    return out + [""]


def _sec_s(stats: dict | None, key: str) -> str:
    return fmt(stats[key] / 1000, 2) if stats and stats.get("n") else "-"


def _officer_report(p: dict[str, Any]) -> list[str]:
    out = ["## 7. The officer's report", "",
           "Forms submitted in the Prefect UI with the request its Resume dialog sends (POST /api/flow_runs/ID/resume), one "
           "every 0.5-2.5 s, to runs of real cases asking for the WSO's service, with two `yes > /dev/null` processes running "
           "beside `custody up` on the 2 cores. Each is timed from the moment Prefect stored it (the input's `created`) to: "
           "the service in the database, written by the reader in `custody up` (custody); the start of the run's new "
           "process, which Prefect schedules after the resume and in which the path before the reader recorded the form "
           "(its lower bound, measured on the same forms); and the outcome on the run's page (the reader's log line). "
           "Resumes that the Prefect server refused with 503 while its database was busy were sent again, as an officer "
           "would press Submit again; the time counts from the one it stored.", "",
           "| database | forms | held | custody p50 / p99 / max | the run's process starts p50 / p99 / max | on the run's page p50 / p99 / max |",
           "|---|---|---|---|---|---|"]
    for kind, v in p.items():
        trio = lambda s: f"{_sec_s(s, 'p50')} / {_sec_s(s, 'p99')} / {_sec_s(s, 'max')} s"
        out.append(f"| {kind} | {v['n']} | {v['held']} | {trio(v['custody_ms'])} | {trio(v['run_ms'])} | {trio(v['shown_ms'])} |")
    return out + [""]


def _sweep_verdict(one: dict[str, Any]) -> list[str]:
    """The summary's cells for one sweep pass: the goal (under 100 ms of
    database time) is judged on the driver's time; where the server's own time
    is known (PostgreSQL) it is shown beside it, and a pass whose server time
    alone meets the goal says so rather than a bare no."""
    driver, server = one["db_ms"], one.get("server_ms")
    figure = f"{fmt(driver)} ms" + (f" (server {fmt(server)} ms)" if server is not None else "")
    if driver < 100:
        met = "yes"
    elif server is not None and server < 100:
        met = "**no**: the server's own time only"
    else:
        met = "**no**"
    return [figure, "-", "< 100 ms", met]


def _sweep(p: dict[str, Any], plots: dict[str, str]) -> list[str]:
    out = ["## 6. Backstop: one sweep", "",
           "One pass of the deadline backstop over many open cases, the same due cases each time (so the work is constant and "
           "the waiting grows). The open cases are 10 % held (release order hours away) and 90 % waiting for release; the due "
           "cases and one template of each kind go through the intake, the rest are copies of the template's rows (renamed, "
           "audit chain recomputed), which the intake would take many minutes to write. Database time is the time inside "
           "the driver (statements, fetching their rows, commits with their fsync), summed over the pass; the pass is the "
           "product's `sweep()` in-process on a fresh copy of the database, written to disk first as a running server's "
           "database is (PostgreSQL: analysed and its tables loaded into its cache, as a running server has them); "
           "the command is `custody sweep --json` in a new process on another copy (Python start-up and imports included). "
           "On PostgreSQL the server's own time is shown too: the execution time it records for the pass's statements "
           "(pg_stat_statements, commits included); the rest of the database time is the driver's work (psycopg "
           "converting each row's values both ways) and the round trips.", "",
           "| database | open | due | database time | of it in the server | statements | commits | pass | command | due query alone | next-due query alone |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind, v in p.items():
        for row in v["rows"]:
            q = row.get("queries_ms", {})
            server = row["pass"].get("server_ms")
            out.append(f"| {kind} | {row['open']:,} | {row['due']:,} | **{fmt(row['pass']['db_ms'])} ms** | "
                       f"{fmt(server) + ' ms' if server is not None else '-'} | {row['pass']['statements']} | "
                       f"{row['pass']['commits']} | {fmt(row['pass']['wall_ms'])} ms | {fmt(_get(row, 'cli', 'wall_ms'))} ms | "
                       f"{fmt(q.get('due query'), 2)} ms | {fmt(q.get('next-due query'), 2)} ms |")
    out += ["", "Where the database time goes in the largest pass:", ""]
    for kind, v in p.items():
        last = v["rows"][-1]
        parts = ", ".join(f"{k} {fmt(ms)} ms ×{last['pass']['by_kind_count'].get(k, 0)}"
                          for k, ms in sorted(last["pass"]["by_kind_ms"].items(), key=lambda kv: -kv[1]))
        out.append(f"- {kind}: {parts}")
        for label, plan in last.get("plan", {}).items():
            out.append(f"  - {label} plan: `{plan}`")
    out.append("")
    if "sweep" in plots:
        out += [f"![sweep database time by open cases]({plots['sweep']})", ""]
    return out


# Why a cost grows with the waiting cases, where the mechanism is known (read
# beside the measured verdict: the explanation says what the cost is made of,
# the ratio says how it behaved in this run).
GROWTH_WHY = {
    "sweep": "the due cases are found through the (status, next_due_at) index: the waiting cases are not read",
    "due query": "an index range over due cases only",
    "next-due query": "the first entry of the same index",
    "custody db": "rows per case (case, detainer, booking, inbox event, audit entries, notices) plus a fixed part",
    "intake": "the same events at each size (work-constant); one case's rows and index entries each: the B-tree depth "
              "(logarithmic) is all the waiting cases add",
    "memory": "the long-lived processes hold no per-case state: cases wait in the databases",
    "processes": "a case run is a process only while it acts; a waiting one is a row",
    "prefect db": "one flow run and its state rows per case (Prefect's database)",
    "construct": "one API call per run (Prefect) and one event per case (custody): per-case work",
    "ui list": "Prefect's own queries: on SQLite no index serves the Runs page's default sort (coalesce(start_time, "
               "expected_start_time)), so every run is read to keep the first 10; the suspended-runs page walks an index "
               "(state_type, that sort); both count every matching run for the page total: linear in runs, in Prefect's "
               "schema, not custody's",
    "ui count": "a count of every run: a scan of all runs (Prefect's own query)",
    "reconcile": "the bridge's catch-up read takes the cases whose run may lag from a partial index of them "
                 "(cases.mirror_pending, migration 0009): the waiting cases in step are not read",
    "idle cpu": "the interval deployments and the Prefect server's loop services: nothing per waiting case (the "
                "server's pause-expiration service, which re-reads every suspended run every 5 s, is off: no case run "
                "suspends with a timeout)",
}


def _verdict(total_ratio: float, scale: float) -> str:
    """How a total grew when the waiting cases grew `scale` times."""
    if total_ratio < 1.5:
        return "flat"
    if total_ratio < scale / 1.3:
        return "sublinear"
    if total_ratio <= scale * 1.3:
        return "linear"
    return "**faster than linear**"


def _growth(r: dict[str, Any]) -> list[str]:
    """Item 3 of issue 7: every cost measured at two populations, how it grew,
    and a verdict that names anything growing faster than the cases."""
    s = r["scenarios"]
    rows: list[str] = []
    faster: list[str] = []

    def add(label: str, a: float | None, b: float | None, size_a: int, size_b: int, unit: str = "", *,
            per_case: bool = False, why: str | None = None, note: str = "") -> None:
        """`per_case`: the figure is a cost per case (or per event): its total
        is the figure times the cases, so it is linear when the figure is flat."""
        if a is None or b is None:
            return
        ratio = b / a if a else float("inf")
        scale = size_b / size_a
        total = ratio * scale if per_case else ratio
        verdict = _verdict(total, scale)
        if per_case:
            verdict += " (per case: flat)" if 1 / 1.3 <= ratio <= 1.3 else f" (per case ×{ratio:.2f})"
        rows.append(f"| {label} | {size_a:,} → {size_b:,} | {fmt(a, 2)}{unit} | {fmt(b, 2)}{unit} | ×{ratio:.2f} | {verdict} | "
                    f"{GROWTH_WHY.get(why, '') if why else ''}{note} |")
        if "faster" in verdict:
            faster.append(label)

    for kind in r["kinds"]:
        sw = sorted(_get(s, "sweep", kind, "rows", default=[]), key=lambda row: row["open"])
        if len(sw) >= 2:
            for a, b in ((sw[0], sw[1]), (sw[0], sw[-1])) if len(sw) > 2 else ((sw[0], sw[1]),):
                sa, sb = a["open"], b["open"]
                add(f"sweep database time, {a['due']:,} due ({kind})", a["pass"]["db_ms"], b["pass"]["db_ms"], sa, sb, " ms", why="sweep")
                if b is sw[1]:  # the largest population: the database time and the two reads are enough
                    add(f"sweep statements ({kind})", a["pass"]["statements"], b["pass"]["statements"], sa, sb, why="sweep")
                    add(f"sweep pass, wall ({kind})", a["pass"]["wall_ms"], b["pass"]["wall_ms"], sa, sb, " ms", why="sweep")
                    add(f"`custody sweep` command, wall ({kind})", _get(a, "cli", "wall_ms"), _get(b, "cli", "wall_ms"), sa, sb,
                        " ms", why="sweep")
                add(f"due query ({kind})", _get(a, "queries_ms", "due query"), _get(b, "queries_ms", "due query"), sa, sb, " ms",
                    why="due query")
                add(f"next-due query ({kind})", _get(a, "queries_ms", "next-due query"), _get(b, "queries_ms", "next-due query"),
                    sa, sb, " ms", why="next-due query")
                add(f"custody database size, sweep population ({kind})", a["db_bytes"] / MiB, b["db_bytes"] / MiB, sa, sb, " MiB",
                    why="custody db")
        it = sorted(_get(s, "intake", kind, "rows", default=[]), key=lambda row: row["background_open"])
        if len(it) >= 2:
            a, b = it[0], it[-1]
            sa, sb = a["background_open"], b["background_open"]
            for mode in ("single, 1 client", "single, 4 clients") + tuple(k for k in a if k.startswith("batches")):
                ea, eb = _get(a, mode, "events_per_s"), _get(b, mode, "events_per_s")
                if ea and eb:
                    add(f"intake, ms per event, {mode.replace('client', 'sender')} ({kind})", 1000 / ea, 1000 / eb, sa, sb, " ms",
                        why="intake")
            add(f"intake request p50, single sender ({kind})", _get(a, "single, 1 client", "request_ms", "p50"),
                _get(b, "single, 1 client", "request_ms", "p50"), sa, sb, " ms", why="intake")

    o = _get(s, "open_cases", "ours", default={})
    oc = sorted(o.get("rows", []), key=lambda row: row["open"])
    if len(oc) >= 2:
        a, b = oc[0], oc[-1]
        sa, sb = a["open"], b["open"]
        base = o.get("baseline") or {}
        add("whole-system memory (custody up + Prefect), long-lived processes", a.get("rss_steady_bytes", a["rss_bytes"]) / MiB,
            b.get("rss_steady_bytes", b["rss_bytes"]) / MiB, sa, sb, " MiB", why="memory")
        add("whole-system memory, with the interval runs alive at the reading", a["rss_bytes"] / MiB, b["rss_bytes"] / MiB, sa, sb,
            " MiB", why="memory")
        add("processes", a["processes"], b["processes"], sa, sb, why="processes")
        for db, label in (("custody_db_bytes", "custody"), ("prefect_db_bytes", "Prefect")):
            zero = base.get(db, 0)
            add(f"{label} database, bytes per open case (above the empty system)", (a[db] - zero) / sa, (b[db] - zero) / sb, sa, sb,
                " B", per_case=True, why="custody db" if label == "custody" else "prefect db")
        for key, label in (("custody_intake_s", "creating the cases (POST /events, batches of 500)"),
                           ("prefect_construct_s", "creating the runs (Prefect API)")):
            if a.get(key) is not None and b.get(key) is not None and a.get("constructed") and b.get("constructed"):
                ra, rb = _get(a, "prefect_construct_retries", "retries"), _get(b, "prefect_construct_retries", "retries")
                note = (f" (requests retried after a busy answer: {ra} of {a['constructed']:,}, then {rb} of {b['constructed']:,})"
                        if key == "prefect_construct_s" and ra is not None and rb is not None else "")
                add(f"{label}, ms per case", a[key] * 1000 / a["constructed"], b[key] * 1000 / b["constructed"], sa, sb, " ms",
                    per_case=True, why="construct", note=note)
        for query, label in (("paginate", "Prefect UI run list (first page + total)"),
                             ("paginate suspended", "Prefect UI suspended-runs list"), ("count", "Prefect run count")):
            for pct in ("p50", "p95"):
                add(f"{label}, {pct}", _get(a, "ui_list_ms", query, pct), _get(b, "ui_list_ms", query, pct), sa, sb, " ms",
                    why="ui count" if query == "count" else "ui list")
        add("bridge's catch-up query (every 30 s), p50", a.get("reconcile_query_ms"), b.get("reconcile_query_ms"), sa, sb, " ms",
            why="reconcile")
        add("idle CPU of the whole system", a.get("idle_cpu_percent"), b.get("idle_cpu_percent"), sa, sb, " %", why="idle cpu")
    if not rows:
        return []
    out = ["## 8. How each cost grows with waiting cases", "",
           "Every cost measured at two populations of waiting cases, the larger over the smaller. A total is *flat* under ×1.5, "
           "*sublinear* below the growth of the cases ÷ 1.3, *linear* within ×1.3 of it, and **faster than linear** above. A "
           "per-case figure (bytes or time per case created) is judged by the total it makes: flat per case is linear in total. "
           "Costs of a fixed amount of work (a sweep of the same due cases, the same intake events, one UI page) should be flat. Single "
           "measurements on a shared machine: a ratio within ±30 % of a boundary, or of figures of a few milliseconds, is noise. "
           "The naive peer is measured at one size only and extrapolated linearly, so it has no row here.", "",
           "| cost | open cases | smaller | larger | ratio | grows | made of |", "|---|---|---|---|---|---|---|"] + rows + [""]
    if faster:
        out += ["**Faster than linear in this run:** " + "; ".join(faster) + ". See the \"made of\" column for what the cost "
                "consists of; a ratio near the boundary on a loaded machine should be measured again before it is acted on.", ""]
    else:
        out += ["**Nothing grew faster than linearly in this run.**", ""]
    return out


def _noise(r: dict[str, Any]) -> list[str]:
    out = ["## Noise", "", "One durable SQLite commit on this disk, and the 1-minute load average (2 cores), just before and after each "
           "benchmark. Before each one the command waited (up to a limit) for the load to fall below "
           f"{r.get('quiet_load', '-')}:", "",
           "| benchmark | waited for a quieter machine | took | commit p50 / p99 before | after | load before | after |",
           "|---|---|---|---|---|---|---|"]
    for name, n in r.get("noise", {}).items():
        b, a = n["before"], n["after"]
        out.append(f"| {name} | {n.get('waited_for_quiet_s', 0) / 60:.1f} min | {n['seconds'] / 60:.1f} min | "
                   f"{fmt(b['commit_ms_p50'], 2)} / {fmt(b['commit_ms_p99'], 2)} ms | "
                   f"{fmt(a['commit_ms_p50'], 2)} / {fmt(a['commit_ms_p99'], 2)} ms | {b['load1']:.1f} | {a['load1']:.1f} |")
    return out + [""]


# --- plots -----------------------------------------------------------------------------------------

def _plots(r: dict[str, Any], out: Path) -> dict[str, str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    made = {}
    s = r["scenarios"]
    if "precision" in s and not any(v[key].get("raw_record_ms") for v in s["precision"].values() for key in ("ours", "apscheduler")):
        # Figures kept by --merge carry no raw lateness (results.json is written without it): keep that run's plot.
        if (out / "precision.png").exists():
            made["precision"] = "precision.png"
    elif "precision" in s:
        fig, ax = plt.subplots(figsize=(7, 4))
        for kind, v in s["precision"].items():
            for label, key, style in (("custody", "ours", "-"), ("APScheduler 3", "apscheduler", "--")):
                raw = sorted(v[key].get("raw_record_ms", []))
                if raw:
                    ax.plot([max(x, 0.01) for x in raw], [(i + 1) / len(raw) for i in range(len(raw))], style, label=f"{label} ({kind})")
        ax.set_xscale("log")
        ax.set_xlabel("lateness of the release order after its due time (ms, log scale)")
        ax.set_ylabel("fraction of release orders")
        ax.axvline(2, color="grey", linewidth=0.8)
        ax.axvline(20, color="grey", linewidth=0.8)
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "precision.png", dpi=110)
        plt.close(fig)
        made["precision"] = "precision.png"
    if "sweep" in s:
        fig, ax = plt.subplots(figsize=(7, 4))
        for kind, v in s["sweep"].items():
            xs = [row["open"] for row in v["rows"]]
            ax.plot(xs, [row["pass"]["db_ms"] for row in v["rows"]], "o-", label=f"database time ({kind})")
            ax.plot(xs, [row["queries_ms"]["due query"] + row["queries_ms"]["next-due query"] for row in v["rows"]], "s--",
                    label=f"the two reads of each pass ({kind})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("open cases (the same cases due each time)")
        ax.set_ylabel("ms")
        ax.axhline(100, color="grey", linewidth=0.8)
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "sweep.png", dpi=110)
        plt.close(fig)
        made["sweep"] = "sweep.png"
    o, n = _get(s, "open_cases", "ours"), _get(s, "open_cases", "naive")
    if o and o.get("rows"):
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot([row["open"] for row in o["rows"]], [row["rss_bytes"] / MiB for row in o["rows"]], "o-", label="custody (measured)")
        if n:
            ax.plot([n["runs"]], [n["rss_bytes"] / MiB], "s", label="naive: live run per case (measured)")
            ex = n.get("extrapolated", [])
            ax.plot([n["runs"]] + [e["open"] for e in ex], [n["rss_bytes"] / MiB] + [e["rss_bytes"] / MiB for e in ex], "--",
                    label="naive (extrapolated)")
        ax.axhline(24 * 1024, color="grey", linewidth=0.8)
        ax.text(60, 24 * 1024 * 1.1, "this machine's memory", fontsize=8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("open cases, each with its Prefect run")
        ax.set_ylabel("memory of the whole system (MiB)")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "open_cases.png", dpi=110)
        plt.close(fig)
        made["open"] = "open_cases.png"
    return made
