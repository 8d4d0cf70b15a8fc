"""What every benchmark shares: the policy, workspaces (a data folder and a
fresh database per run), the events, statistics, process memory, the machine."""
from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[1]
UTC = timezone.utc

# Detainer mode: a hold starts when the release is authorised (no officer's form
# in the way), so a benchmark can place each release order at a chosen instant:
# release order = T0 + 48 h - 2 h.
POLICY_TOML = """\
[jurisdiction]
name = "Benchmark County"
mode = "detainer"
timezone = "America/New_York"
facilities = ["RCJ"]

[hold]
limit = "48h"
service_grace = "1h"
reminder_marks = ["12h", "4h", "1h"]
release_order_lead = "2h"
page_supervisors_before = "30m"
ice_advance_notice = "48h"
pickup_poll_interval = "15m"
"""
RELEASE_ORDER_AFTER_T0 = timedelta(hours=46)
TOKEN = "bench-token-" + "x" * 32  # one sender that may send every event type
SENDERS_TOML = f"""\
[[sender]]
name = "bench"
token = "{TOKEN}"
events = ["detainer.received", "release.authorized", "release.scheduled", "inmate.released", "warrant.served",
          "detainer.copy_served", "detainer.lifted", "custody.transferred", "notice.acknowledged"]
"""


def now() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


# The machine is shared with other developers' test runs (load averages of 3-6
# on 2 cores are common). The processes whose timing is measured (ours and the
# peer alike, never the set-up work) run at this nice level when we may raise
# priority (root), so the figures describe the systems rather than the queue
# for a CPU. They sleep almost all the time, so they take little from others.
# `--keep-nice` (CUSTODY_BENCH_KEEP_NICE=1) leaves every process at the nice
# level the command was started with: for a run that must stay out of the way
# of other work on the machine (a soak test), at the price of noisier figures.
MEASURED_NICE = -10
KEEP_NICE_ENV = "CUSTODY_BENCH_KEEP_NICE"


def may_raise_priority() -> bool:
    return os.geteuid() == 0 and os.environ.get(KEEP_NICE_ENV) != "1"


def raise_priority() -> None:
    if may_raise_priority():
        os.nice(MEASURED_NICE)


class measured:
    """Raise this process's priority while it measures (a pass in-process),
    then give back the nice level it had (not 0: the command may run niced)."""

    def __enter__(self):
        self._before = os.getpriority(os.PRIO_PROCESS, 0)
        if may_raise_priority():
            os.setpriority(os.PRIO_PROCESS, 0, MEASURED_NICE)
        return self

    def __exit__(self, *exc):
        if os.getpriority(os.PRIO_PROCESS, 0) != self._before:
            os.setpriority(os.PRIO_PROCESS, 0, self._before)


class PartialResult(Exception):
    """A benchmark of which one part failed: `partial` holds the figures of the
    parts that ran (and the failed part's error), so one failure does not
    throw away the rest of a long run."""

    def __init__(self, message: str, partial: dict[str, Any]):
        super().__init__(message)
        self.partial = partial


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- events --------------------------------------------------------------------------

def detainer_event(key: str, n: int, at: datetime, series: int = 0) -> dict[str, Any]:
    """A detainer for booking `key`-B`n`. The A-number (series, n) must be unique
    in a database: one person has one open case (rule 11)."""
    return {"event_id": f"{key}-d{n}", "type": "detainer.received", "occurred_at": iso(at), "booking_number": f"{key}-B{n}",
            "detainer": {"form": "I-247A", "requests_custody": True, "a_number": f"A{series:03d}{n:06d}",
                         "ice_event_number": f"{key}-E{n}", "issuing_office": "ERO Atlanta", "issued_at": iso(at - timedelta(hours=1))},
            "warrant": {"form": "I-200", "number": f"{key}-W{n}"},
            "subject": {"name": f"Person {n}", "dob": "1990-01-02", "identity_verified": True}}


def release_event(key: str, n: int, at: datetime) -> dict[str, Any]:
    return {"event_id": f"{key}-r{n}", "type": "release.authorized", "occurred_at": iso(at), "booking_number": f"{key}-B{n}",
            "reason": "bond_posted"}


# --- workspaces ------------------------------------------------------------------------

@dataclass
class Workspace:
    """One data folder and one fresh application database."""
    home: Path
    database_url: str
    kind: str  # sqlite | postgresql
    children: list[subprocess.Popen] = field(default_factory=list)

    @property
    def policy_path(self) -> Path:
        return self.home / "policy.toml"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTODY_", "PREFECT_"))}
        env.update(CUSTODY_HOME=str(self.home), CUSTODY_DATABASE_URL=self.database_url, CUSTODY_POLICY=str(self.policy_path),
                   CUSTODY_SENDERS=str(self.home / "senders.toml"), PYTHONUNBUFFERED="1", CUSTODY_PREFECT="off")
        env.update(extra)
        return env

    def core(self, clock=None, setup: bool = False):
        """The product's core on this database. `setup=True`: for building
        populations only, commits are not flushed to disk (nothing measured
        goes through it; it spares the shared disk and the clock)."""
        from custody.service.core import Core
        from custody.store.db import make_engine, migrate
        from models.clock import SystemClock
        from models.policy import load_policy

        engine = make_engine(self.database_url)
        if setup:
            from sqlalchemy import event

            @event.listens_for(engine, "connect")
            def _no_flush(dbapi_connection, _record):
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA synchronous=OFF" if self.kind == "sqlite" else "SET synchronous_commit = off")
                cursor.close()
                if self.kind != "sqlite":
                    dbapi_connection.commit()
        migrate(engine)
        return Core(engine, load_policy(self.policy_path), clock or SystemClock())

    def start_up(self, name: str = "custody-up", *, prefect: bool = False, **env: str) -> tuple[subprocess.Popen, int]:
        """`custody up` exactly as an operator starts it (without Prefect unless asked)."""
        port = free_port()
        argv = [sys.executable, "-m", "custody", "up", "--port", str(port)] + ([] if prefect else ["--no-prefect"])
        log = open(self.home / f"{name}.log", "w")
        proc = subprocess.Popen(argv, env=self.env(**env), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=raise_priority)
        self.children.append(proc)
        return proc, port

    def stop(self, proc: subprocess.Popen, timeout: float = 60) -> None:
        """Ctrl-C, as an operator stops it; whatever it started and left
        behind (only processes this benchmark started) is then killed by id."""
        if proc.poll() is not None:
            return
        started = [(p, _start_time(p)) for p in descendants(proc.pid) if p != proc.pid]
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        for pid, start_time in started:
            if start_time is not None and _start_time(pid) == start_time:  # the same process, not a reused id
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def stop_all(self) -> None:
        for proc in self.children:
            self.stop(proc)
        self.children.clear()


class Workspaces:
    """Fresh workspaces under one root, on SQLite or on the private PostgreSQL."""

    def __init__(self, root: Path, pg=None):
        self.root = root
        self.pg = pg
        self.made: list[Workspace] = []

    def new(self, name: str, kind: str = "sqlite") -> Workspace:
        home = self.root / f"{name}-{kind}"
        if home.exists():
            shutil.rmtree(home)
        home.mkdir(parents=True)
        if kind == "sqlite":
            url = f"sqlite:///{home / 'custody.db'}"
        else:
            url = self.pg.fresh_database(f"{name}_{kind}".replace("-", "_"))
        ws = Workspace(home, url, kind)
        ws.policy_path.write_text(POLICY_TOML)
        (home / "senders.toml").write_text(SENDERS_TOML)
        self.made.append(ws)
        return ws

    def stop_all(self) -> None:
        for ws in self.made:
            ws.stop_all()


def wait_http(url: str, timeout: float = 60, token: str | None = TOKEN) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


# --- statistics --------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of the values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(min(rank, len(ordered))) - 1]


def summary(values: Iterable[float]) -> dict[str, Any]:
    values = list(values)
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99),
            "max": max(values), "min": min(values), "mean": sum(values) / len(values)}


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


# --- noise probes ----------------------------------------------------------------------------

def fsync_probe(folder: Path, commits: int = 100) -> dict[str, Any]:
    """Latency of one durable SQLite commit (WAL, synchronous=FULL) on this disk
    right now: the machine is shared, and this is what a durable write costs."""
    path = folder / "fsync-probe.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    times = []
    for n in range(commits):
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?)", (n,))
        conn.execute("COMMIT")
        times.append((time.perf_counter() - start) * 1000)
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return {"commit_ms_p50": percentile(times, 50), "commit_ms_p99": percentile(times, 99), "load1": os.getloadavg()[0]}


# --- memory ------------------------------------------------------------------------------------

def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _start_time(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def tree_rss(pid: int) -> tuple[int, int]:
    """(bytes resident, processes) of a process and everything it started."""
    pids = descendants(pid)
    return sum(rss_bytes(p) for p in pids), len(pids)


# --- the machine ---------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "-"

    cpu = "-"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "-"
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    # The results folder is the command's output (and --merge's input), not code that was measured.
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory": mem, "kernel": platform.release(),
        "os": _os_name(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
        "prefect": v("prefect"), "sqlalchemy": v("sqlalchemy"), "apscheduler": v("apscheduler"), "psycopg": v("psycopg"),
        "custody_commit": commit + ("+local changes" if dirty else ""),
        "disk": _disk(ROOT), "started_at": iso(now()),
    }


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def _disk(path: Path) -> str:
    out = subprocess.run(["df", "-h", "--output=source,fstype", str(path)], capture_output=True, text=True).stdout.split("\n")
    return " ".join(out[1].split()) if len(out) > 1 else "-"


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
