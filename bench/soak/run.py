"""Run the soak: `python -m bench.soak [--minutes 30 --cases 300 --faults-per-kind 20]`.

Starts the real system (`custody up`: Prefect server, served deployments, HTTP
endpoint, relay, database backstop) with a compressed policy, feeds a simulated
jail through the HTTP endpoint, injects faults at random times, lets the
system settle, then checks the invariants and writes a Markdown report. Exit 0
only if every invariant holds."""
from __future__ import annotations

import argparse
import platform
import random
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from bench.soak import checks
from bench.soak.system import ROOT, System, kill9
from bench.soak.wso import FormReport, FormWso
from custody.simulation import Plan, Send, Timing, event_body, plan
from custody.store import schema as t
from custody.store.db import make_engine

FAULT_KINDS = ("kill -9 serve process or flow-run worker", "Prefect server restart (kill -9)",
               "notification receivers failing", "event duplicated and reordered", "event delayed",
               "burst of releases in one minute")


@dataclass
class Faults:
    planned: Counter = field(default_factory=Counter)
    done: Counter = field(default_factory=Counter)
    log: list[str] = field(default_factory=list)

    def record(self, kind: str, what: str, elapsed: float) -> None:
        self.done[kind] += 1
        self.log.append(f"{elapsed:7.1f}s  {kind}: {what}")


def policy_toml(limit: int) -> tuple[str, Timing]:
    grace, lead, page = limit // 3, max(5, round(limit * 0.22)), max(3, limit // 9)
    text = f"""[jurisdiction]
name = "Soak County (compressed: {limit}-second holds)"
mode = "wso"
timezone = "America/New_York"
facilities = ["RCJ"]

[hold]
limit = "{limit}s"
service_grace = "{grace}s"
reminder_marks = ["{2 * limit // 3}s", "{limit // 3}s"]
release_order_lead = "{lead}s"
page_supervisors_before = "{page}s"
ice_advance_notice = "{2 * limit}s"
pickup_poll_interval = "60s"
report_wait = "{min(30, limit - lead - grace)}s"
"""
    return text, Timing(limit=limit, grace=grace, lead=lead)


# --- faults planned into the feed ------------------------------------------------------------

def _movable(send: Send, jail: Plan) -> bool:
    """Acknowledgements follow their notice; moving one before it would be a (correct) rejection, not a fault."""
    if send.type == "notice.acknowledged":
        return False
    return not (send.type == "release.authorized" and any(s.type == "notice.acknowledged" for s in jail.of_case(send.case)))


def plan_feed_faults(jail: Plan, per_kind: int, feed: float, rng: random.Random, faults: Faults, burst_size: int) -> None:
    bursted: set[int] = set()
    for n in range(per_kind):  # bursts first: they move whole cases
        at = feed * (0.15 + 0.7 * (n + rng.random()) / per_kind)
        candidates = [c for c in jail.cases if c.path in ("held_released", "held_picked_up") and c.t0 is not None
                      and c.number not in bursted and abs(c.t0 - at) < 90 and c.start + (at - c.t0) >= 0]
        chosen = rng.sample(candidates, min(burst_size, len(candidates)))
        if len(chosen) < 2:
            continue
        for case in chosen:
            shift = at - case.t0
            for send in jail.of_case(case.number):
                send.at += shift
                send.occurred += shift
                send.note = send.note or "burst"
            case.start += shift
            case.t0 = at
            bursted.add(case.number)
        faults.planned[FAULT_KINDS[5]] += 1
        faults.log.append(f"{at:7.1f}s  {FAULT_KINDS[5]} (planned): {len(chosen)} releases at the same second")

    for _ in range(per_kind):
        movable = [s for s in jail.sends if _movable(s, jail) and not s.note]
        later = rng.choice(movable)
        copy = Send(later.at + rng.uniform(1, 30), later.occurred, later.case, later.booking, later.type, later.fields,
                    later.event_id, note="duplicate")
        jail.sends.append(copy)
        of_case = sorted((s for s in jail.of_case(later.case) if _movable(s, jail) and s.note != "duplicate"), key=lambda s: s.at)
        pairs = [(a, b) for a, b in zip(of_case, of_case[1:])]
        if pairs:
            first, second = rng.choice(pairs)
            first.at = second.at + rng.uniform(0.5, 3)  # the earlier event arrives after the later one
            first.note = "reordered"
        faults.planned[FAULT_KINDS[3]] += 1

    for _ in range(per_kind):
        movable = [s for s in jail.sends if _movable(s, jail) and not s.note]
        send = rng.choice(movable)
        send.at += rng.uniform(10, 40)
        send.note = "delayed"
        faults.planned[FAULT_KINDS[4]] += 1
    jail.sends.sort(key=lambda s: s.at)


def timed_faults(per_kind: int, feed: float, rng: random.Random) -> list[tuple[float, int]]:
    """(offset, kind index) for the faults done to processes and receivers."""
    out = []
    for kind in (0, 1, 2):
        for n in range(per_kind):
            out.append((feed * (0.05 + 0.9 * (n + rng.random()) / per_kind), kind))
    return sorted(out)


# --- the run -----------------------------------------------------------------------------------

def iso(epoch: float) -> str:
    return datetime.fromtimestamp(round(epoch, 3), timezone.utc).isoformat().replace("+00:00", "Z")


class ReleaseDesk(threading.Thread):
    """The jail's release desk: it watches for release orders and confirms each
    release a few seconds later, as staff working the board would."""

    def __init__(self, system: System, engine, rng: random.Random, answers: dict[str, set[str]], lock: threading.Lock):
        super().__init__(name="release-desk", daemon=True)
        self.system, self.engine, self.rng, self.answers, self.lock = system, engine, rng, answers, lock
        self.seen: dict[str, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(2):
            try:
                with self.engine.connect() as conn:
                    ordered = conn.execute(select(t.cases.c.case_id, t.cases.c.booking_number)
                                           .where(t.cases.c.status == "release_ordered")).all()
            except Exception:
                continue
            now = time.monotonic()
            for case_id, booking in ordered:
                due = self.seen.setdefault(case_id, now + self.rng.uniform(1, 6))
                if now >= due and due > 0:
                    status, answer = self.system.post("release-desk", {
                        "event_id": f"desk-{case_id}", "type": "inmate.released", "occurred_at": iso(time.time()),
                        "booking_number": booking, "released_by": "Release desk (soak)"})
                    with self.lock:
                        self.answers.setdefault(answer.get("result", f"http-{status}"), set()).add(f"desk-{case_id}")
                    self.seen[case_id] = -1


def run_soak(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    policy, timing = policy_toml(args.limit)
    home = Path(args.home or tempfile.mkdtemp(prefix="custody-soak-")).resolve()
    system = System(home, policy)
    feed = args.minutes * 60
    tag = datetime.now(timezone.utc).strftime("%H%M%S")
    jail = plan(args.cases, feed, timing, rng, tag, forms=True)
    faults = Faults()
    plan_feed_faults(jail, args.faults_per_kind, feed, rng, faults, args.burst)
    schedule = timed_faults(args.faults_per_kind, feed, rng)
    for _, kind in schedule:
        faults.planned[FAULT_KINDS[kind]] += 1

    print(f"soak: home {home}; starting custody up...", flush=True)
    began = time.time()
    try:
        return _drive(args, rng, system, jail, faults, schedule, timing, feed, began, home)
    finally:
        system.stop()


def _drive(args, rng, system: System, jail: Plan, faults: Faults, schedule, timing: Timing, feed: float, began: float,
           home: Path) -> int:
    system.start()
    engine = make_engine(f"sqlite:///{home / 'custody.db'}")
    answers: dict[str, set[str]] = {}
    rejections: list[str] = []
    lock = threading.Lock()
    desk = ReleaseDesk(system, engine, rng, answers, lock)
    desk.start()
    forms: list[FormReport] = []
    print(f"soak: up in {time.time() - began:.0f} s; feeding {len(jail.cases)} cases ({len(jail.sends)} sends) "
          f"over {feed / 60:.1f} min with {sum(faults.planned.values())} faults", flush=True)

    start = time.time()
    elapsed = lambda: time.time() - start
    kill_turn = 0
    queue = [(s.at, 1, s) for s in jail.sends] + [(at, 0, kind) for at, kind in schedule]
    queue.sort(key=lambda item: (item[0], item[1]))
    for at, is_send, item in queue:
        wait = at - elapsed()
        if wait > 0:
            time.sleep(wait)
        if is_send:
            send: Send = item
            if send.via == "form":
                case = jail.cases[send.case]
                report = FormReport(send.booking, planned=start + send.at, closes=start + case.t0 + timing.grace)
                FormWso(system.api, engine, report, send.fields["warrant_number"], forms, lock).start()
                continue
            status, answer = system.post(send.sender, event_body(send, start, iso))
            result = answer.get("result", f"http-{status}")
            with lock:
                answers.setdefault(result, set()).add(send.event_id)
            if result == "rejected" or status >= 500:
                rejections.append(f"{send.event_id} ({send.note or 'as planned'}): {status} {answer}")
            continue
        kind = item
        if kind == 0:
            flow_runs = system.flow_run_pids()
            if kill_turn % 2 and flow_runs:
                pid = rng.choice(flow_runs)
                faults.record(FAULT_KINDS[0], f"flow-run worker {pid}" if kill9(pid) else "worker already gone", elapsed())
            else:
                pid = system.serve_pid()
                faults.record(FAULT_KINDS[0], f"serve process {pid}" if pid and kill9(pid) else "serve process was down", elapsed())
            kill_turn += 1
        elif kind == 1:
            pid = system.prefect_server_pid()
            faults.record(FAULT_KINDS[1], f"server {pid}" if pid and kill9(pid, group=True) else "server was down", elapsed())
        else:
            down = rng.uniform(*args.receiver_outage)
            system.receivers.fail_for(down)
            faults.record(FAULT_KINDS[2], f"for {down:.0f} s", elapsed())
    for kind in (3, 4, 5):
        faults.done[FAULT_KINDS[kind]] = faults.planned[FAULT_KINDS[kind]]
    fed = elapsed()
    print(f"soak: feed done at {fed:.0f} s; settling (at most {args.settle_minutes} min)...", flush=True)

    figures, details, prefect_wrong = settle_and_check(system, engine, answers, lock, timing, args.settle_minutes * 60)
    with lock:
        form_figures, details["timely_services_lost"] = checks.officer_forms(engine, list(forms))
    figures += form_figures
    desk.stopping.set()
    verify = system.custody("audit", "verify")
    figures.append(checks.Figure("audit hash chains verify (custody audit verify)", "yes" if verify.returncode == 0 else "NO",
                                 "yes", verify.returncode == 0))
    restarts = (home / "up.log").read_text(errors="replace").count("; restarting in ")
    total = time.time() - began
    engine.dispose()
    report = render(args, jail, faults, figures, details, prefect_wrong, rejections, fed, total, restarts, home)
    out = Path(args.report) if args.report else ROOT / "bench" / "results" / f"soak-{datetime.now(timezone.utc):%Y%m%d-%H%M}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(report)
    print(f"soak: report written to {out}")
    return 0 if all(f.ok is not False for f in figures) else 1


def settle_and_check(system: System, engine, answers, lock, timing: Timing, settle_seconds: float):
    """Wait until the database has nothing left to do and Prefect has caught up, then check."""
    deadline = time.monotonic() + settle_seconds
    grace = timedelta(seconds=timing.grace)
    while True:
        with engine.connect() as conn:
            busy = conn.execute(select(t.cases.c.case_id).where(
                t.cases.c.status.in_(["release_authorized", "held", "release_ordered"]))).first()
            pending = conn.execute(select(t.outbox.c.id).where(t.outbox.c.state == "pending")).first()
            lagging = conn.execute(select(t.cases.c.case_id).select_from(
                t.cases.outerjoin(t.case_runs, t.case_runs.c.case_id == t.cases.c.case_id)).where(
                (t.case_runs.c.flow_run_id.is_(None)) | (t.case_runs.c.synced_version < t.cases.c.version))).first()
        quiet = not busy and not pending and not lagging
        if quiet or time.monotonic() > deadline:
            time.sleep(5 if quiet else 0)
            with lock:
                sent = {k: set(v) for k, v in answers.items()}
            figures, details = checks.database_invariants(engine, sent, checks.utcnow(), grace)
            try:
                prefect_figure, wrong = checks.prefect_disagreements(engine, system.api)
            except Exception as exc:  # Prefect not reachable at the end is itself a failure
                prefect_figure, wrong = checks.Figure("Prefect runs whose state disagrees with the database", "unreadable", "0", False), [repr(exc)]
            if prefect_figure.ok or time.monotonic() > deadline:
                try:
                    work = checks.mirror_work(engine, system.api)
                except Exception as exc:
                    work = [checks.Figure("case-run executions (entries into Running) / per case", f"unreadable ({exc!r})"[:120],
                                          "counted", None)]
                return figures + [prefect_figure] + work, details, wrong
        time.sleep(5)


def render(args, jail: Plan, faults: Faults, figures, details, prefect_wrong, rejections, fed, total, restarts, home) -> str:
    from importlib.metadata import version
    ok = all(f.ok is not False for f in figures)
    lines = [
        f"# Soak report: {'ALL INVARIANTS HOLD' if ok else 'INVARIANTS BROKEN'}",
        "",
        f"Command: `{' '.join(shlex.quote(a) for a in [sys.executable.rsplit('/', 1)[-1], '-m', 'bench.soak', *sys.argv[1:]])}`  ",
        f"Finished {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'}: {platform.machine()}, "
        f"{_cpus()} CPUs, Python {platform.python_version()}, Prefect {version('prefect')}, SQLite (WAL).  ",
        f"Policy: {args.limit}-second hold limit (marks scaled alike). Feed {fed / 60:.1f} min, whole run {total / 60:.1f} min; "
        f"the supervisor in `custody up` restarted its children {restarts} times.",
        "",
        "## Invariants",
        "",
        "| invariant | value | must be | holds |",
        "|---|---|---|---|",
    ]
    lines += [f"| {f.name} | {f.value} | {f.bound} | {'yes' if f.ok else ('-' if f.ok is None else '**NO**')} |" for f in figures]
    lines += ["", "## The simulated jail", "", "| path | cases |", "|---|---|"]
    lines += [f"| {p} | {n} |" for p, n in sorted(Counter(c.path for c in jail.cases).items())]
    lines += ["", f"Final statuses: {details['statuses']}. Outbox: {details['outbox_states']}.", "",
              "## Faults injected", "", "| fault | planned | done |", "|---|---|---|"]
    lines += [f"| {k} | {faults.planned[k]} | {faults.done[k]} |" for k in FAULT_KINDS]
    problems = {k: v for k, v in details.items() if k not in ("statuses", "outbox_states") and v}
    if problems or prefect_wrong or rejections:
        lines += ["", "## What broke", ""]
        lines += [f"- {k}: {v}" for k, v in problems.items()]
        lines += [f"- Prefect: {w}" for w in prefect_wrong[:30]]
        lines += [f"- rejected: {r}" for r in rejections[:30]]
    lines += ["", "<details><summary>Fault log</summary>", "", "```", *faults.log, "```", "</details>", "",
              f"Data folder of the run: `{home}` (logs under `logs/`, `up.log`).", ""]
    return "\n".join(lines)


def _cpus() -> int:
    import os
    return os.cpu_count() or 0


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30, help="how long to feed the jail (default 30)")
    p.add_argument("--cases", type=int, default=300)
    p.add_argument("--faults-per-kind", type=int, default=20)
    p.add_argument("--limit", type=int, default=180, help="the compressed hold limit in seconds (default 180)")
    p.add_argument("--burst", type=int, default=5, help="releases in one burst")
    p.add_argument("--settle-minutes", type=float, default=8)
    p.add_argument("--home", help="data folder (default: a new temporary folder)")
    p.add_argument("--report", help="where to write the Markdown report (default bench/results/soak-DATE.md)")
    p.add_argument("--seed", type=int, default=287)
    p.add_argument("--short", action="store_true", help="the CI soak: about 3 minutes, 12 cases, 2 faults of each kind")
    args = p.parse_args(argv)
    if args.short:
        # The fewest cases that still give every path and, with this seed, a burst of releases
        # (tests/e2e/test_soak.py checks both): each case costs its runs' processes, and the
        # length is set by the holds (T0 up to a minute after the detainer, then the 60-s limit),
        # not by the feed.
        args.minutes, args.cases, args.faults_per_kind, args.limit, args.burst, args.settle_minutes = 1.0, 12, 2, 60, 3, 6
    args.receiver_outage = (5, 15) if args.limit < 120 else (10, 30)
    for name in ("minutes", "cases", "limit", "settle_minutes"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')}: must be more than 0")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_soak(parse(argv))
