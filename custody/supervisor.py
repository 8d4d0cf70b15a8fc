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
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path, health_url: str | None = None,
                 requires: "Child | None" = None):
        self.name, self.argv, self.env, self.log_path, self.health_url = name, argv, env, log_path, health_url
        self.requires = requires  # started only while this one is healthy (the serve process needs the server)
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self.started_at = 0.0
        self.failures_in_a_row = 0
        self.restart_at: float | None = None

    def start(self) -> None:
        self.started_at = time.monotonic()
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
    """Restarts dead children. A child that keeps dying at once waits longer
    each time (up to 30 s); one that had run for a while is restarted at once,
    however often that has happened before. Each child has its own pause, so
    one crash-looping child never delays the restart of another."""

    STABLE_AFTER = 20.0  # seconds of life that count as a healthy run (a crash loop dies sooner)

    def __init__(self, children: list[Child], check_every: float = 2.0, clock=time.monotonic):
        super().__init__(name="custody-supervisor", daemon=True)
        self.children = children
        self.check_every = check_every
        self.clock = clock
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(self.check_every):
            self.check_once()

    def check_once(self) -> None:
        now = self.clock()
        for child in self.children:
            if child.alive() or self._stopping.is_set():
                continue
            if child.restart_at is None:
                lived = now - child.started_at
                child.failures_in_a_row = 1 if lived >= self.STABLE_AFTER else child.failures_in_a_row + 1
                pause = 0.0 if child.failures_in_a_row <= 1 else float(min(30, 2 ** child.failures_in_a_row))
                child.restart_at = now + pause
                log.warning("%s exited (code %s) after %.0f s; restarting in %.0f s (restart %d)", child.name,
                            child.process.returncode if child.process else None, lived, pause, child.restarts + 1)
            requires = getattr(child, "requires", None)
            if now >= child.restart_at and (requires is None or requires.healthy()):
                child.restarts += 1
                child.restart_at = None
                child.start()
                child.started_at = now

    def stop(self) -> None:
        self._stopping.set()
        for child in reversed(self.children):
            child.stop()
