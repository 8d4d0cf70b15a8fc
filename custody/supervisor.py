"""Child processes of `custody up` (the Prefect server, the serve process),
restarted when they die. The legal backstop does not live in them."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

log = logging.getLogger("custody.supervisor")


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path, health_url: str | None = None):
        self.name, self.argv, self.env, self.log_path, self.health_url = name, argv, env, log_path, health_url
        self.process: subprocess.Popen | None = None
        self.restarts = 0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        handle.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthy(self) -> bool:
        if not self.alive():
            return False
        if self.health_url is None:
            return True
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as response:
                return response.status == 200
        except Exception:
            return False

    def wait_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return True
            if not self.alive():
                return False
            time.sleep(0.3)
        return False

    def stop(self, timeout: float = 20) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=5)


class Supervisor(threading.Thread):
    """Restarts dead children, with a growing pause between restarts."""

    def __init__(self, children: list[Child], check_every: float = 2.0):
        super().__init__(name="custody-supervisor", daemon=True)
        self.children = children
        self.check_every = check_every
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(self.check_every):
            for child in self.children:
                if not child.alive() and not self._stopping.is_set():
                    child.restarts += 1
                    log.warning("%s exited (code %s); restarting (restart %d)", child.name,
                                child.process.returncode if child.process else None, child.restarts)
                    time.sleep(min(30, 2 ** min(child.restarts, 5)) if child.restarts > 1 else 0)
                    child.start()

    def stop(self) -> None:
        self._stopping.set()
        for child in reversed(self.children):
            child.stop()
