"""The system under test: `custody up` as an operator starts it, the loopback
receivers its notifications go to, and the processes a fault may kill."""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GROUPS = ("ice", "release-desk", "wso", "supervisors", "sheriff", "records")
SENDERS = {
    "jms": ("release.scheduled", "release.authorized", "inmate.released", "custody.transferred"),
    "ice": ("detainer.received", "detainer.lifted", "notice.acknowledged"),
    "records": ("detainer.received", "detainer.copy_served", "detainer.lifted", "notice.acknowledged"),
    "wso": ("warrant.served",),
    "release-desk": ("inmate.released", "custody.transferred"),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Receivers:
    """One HTTP receiver for every group's json:// channel; it can be made to fail."""

    def __init__(self):
        self.messages: list[tuple[str, str, str]] = []
        self.failing_until = 0.0
        self.refused = 0
        self.lock = threading.Lock()
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receivers.lock:
                    if time.monotonic() < receivers.failing_until:
                        receivers.refused += 1
                        self.send_response(503)
                        self.end_headers()
                        return
                    payload = json.loads(body)
                    receivers.messages.append((self.path.strip("/"), payload.get("title", ""), payload.get("message", "")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail_for(self, seconds: float) -> None:
        with self.lock:
            self.failing_until = max(self.failing_until, time.monotonic() + seconds)

    def duplicates(self) -> int:
        with self.lock:
            return sum(n - 1 for n in Counter(self.messages).values() if n > 1)

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def apprise_yaml(self) -> str:
        return "version: 1\nurls:\n" + "".join(f"  - json://127.0.0.1:{self.port}/{g}:\n      - tag: {g}\n" for g in GROUPS)

    def close(self) -> None:
        self.server.shutdown()


class System:
    def __init__(self, home: Path, policy_toml: str):
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.receivers = Receivers()
        (home / "apprise.yml").write_text(self.receivers.apprise_yaml())
        (home / "policy.toml").write_text(policy_toml)
        self.tokens = {name: secrets.token_urlsafe(32) for name in SENDERS}
        (home / "senders.toml").write_text("".join(
            f'[[sender]]\nname = "{n}"\ntoken = "{self.tokens[n]}"\nevents = {json.dumps(list(SENDERS[n]))}\n\n' for n in SENDERS))
        self.http_port, self.prefect_port = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTODY_", "PREFECT_"))}
        self.env.update(CUSTODY_HOME=str(home), CUSTODY_POLICY=str(home / "policy.toml"),
                        CUSTODY_HTTP_PORT=str(self.http_port), CUSTODY_PREFECT_PORT=str(self.prefect_port),
                        PREFECT_RUNNER_POLL_FREQUENCY="2", PYTHONUNBUFFERED="1")
        self.up: subprocess.Popen | None = None
        self.api = f"http://127.0.0.1:{self.prefect_port}/api"

    # --- the whole system -----------------------------------------------------------

    def custody(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "custody", *args], input=stdin, capture_output=True, text=True,
                              env=self.env, cwd=ROOT, timeout=300)

    def start(self, timeout: float = 240) -> None:
        done = self.custody("roster", "load", str(ROOT / "examples" / "roster.csv"))
        if done.returncode != 0:
            raise RuntimeError(f"roster load failed: {done.stderr}")
        self.up = subprocess.Popen([sys.executable, "-m", "custody", "up"], env=self.env, cwd=ROOT,
                                   stdout=open(self.home / "up.log", "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.up.poll() is not None:
                raise RuntimeError(f"custody up exited: see {self.home / 'up.log'}")
            if self._deployments_ready():
                return
            time.sleep(1)
        raise RuntimeError(f"the served deployments did not appear within {timeout:.0f} s: see {self.home / 'up.log'}")

    def _deployments_ready(self) -> bool:
        try:
            with urllib.request.urlopen(urllib.request.Request(
                    f"{self.api}/deployments/filter", data=b"{}", headers={"content-type": "application/json"}), timeout=3) as r:
                names = {d["name"] for d in json.loads(r.read())}
            return {"case", "hold-step", "backstop", "reconcile"} <= names
        except Exception:
            return False

    def stop(self) -> None:
        if self.up is not None and self.up.poll() is None:
            self.up.send_signal(signal.SIGINT)
            try:
                self.up.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.up.kill()
        self.receivers.close()

    # --- events -----------------------------------------------------------------------

    def post(self, sender: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/events", data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json",
                                                  "authorization": f"Bearer {self.tokens[sender]}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    # --- processes a fault may kill ---------------------------------------------------------

    def _ours(self) -> list[tuple[int, str]]:
        """(pid, command line) of every process started for this soak's home."""
        found = []
        marker = f"CUSTODY_HOME={self.home}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if marker not in (entry / "environ").read_bytes().split(b"\0"):
                    continue
                found.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")))
            except OSError:
                continue
        return found

    def serve_pid(self) -> int | None:
        return next((pid for pid, cmd in self._ours() if "deployments.serve" in cmd), None)

    def flow_run_pids(self) -> list[int]:
        serve = self.serve_pid()
        return [pid for pid, cmd in self._ours() if serve and _parent(pid) == serve]

    def prefect_server_pid(self) -> int | None:
        return next((pid for pid, cmd in self._ours()
                     if "prefect server start" in cmd or ("prefect" in cmd and "server" in cmd and "start" in cmd)), None)


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def kill9(pid: int, group: bool = False) -> bool:
    try:
        if group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
