"""The real event endpoint for fuzzing: the app `custody up` serves, under
uvicorn on a loopback socket, in a thread of the test process.

Why not the `custody up` subprocess here: the fuzzers compare every table
before and after each request, so nothing else may write meanwhile (`custody
up` also runs the backstop, which acts on the cases the fuzzer creates), and
the clock is fixed so that "more than 5 minutes in the future" is decided the
same way on every run and when Hypothesis shrinks a failure. The HTTP server,
the app, the handlers and the SQLite file are the real ones. The explicit
bad-input tests run against `custody up` itself."""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import uvicorn

from custody.config import DEFAULT_SENDERS, load_senders
from custody.http import create_app
from custody.service.core import Core
from models.events import EVENT_TYPES

# Every sender of the default configuration, plus one that may send every type
# (so that generated events of any type reach the handlers).
TOKENS = {name: f"{name}-token-0123456789abcdefghijklmnop" for name in [*DEFAULT_SENDERS, "everything"]}
# A rejection's reason starts with the field it is about: "detainer.a_number: ...",
# a made-up key quoted: '"0": is not a field of this event type'.
_SEGMENT = r'(?:[A-Za-z_][A-Za-z0-9_-]*|"(?:[^"\\]|\\.)*")'
NAMES_A_FIELD = re.compile(rf"^{_SEGMENT}(?:\.{_SEGMENT})*: \S", re.ASCII)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_senders(path: Path) -> Path:
    rows = []
    for name, token in TOKENS.items():
        events = EVENT_TYPES if name == "everything" else DEFAULT_SENDERS[name]
        rows.append(f'[[sender]]\nname = "{name}"\ntoken = "{token}"\nevents = {json.dumps(list(events))}\n')
    path.write_text("\n".join(rows))
    return path


@contextmanager
def serving(core: Core, senders_path: Path) -> Iterator[str]:
    port = free_port()
    app = create_app(core, load_senders(senders_path))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, name="fuzz-endpoint", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the endpoint did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def reasons(payload: Any) -> list[str]:
    """Every reason a response gives for refusing something."""
    if isinstance(payload, dict) and "results" in payload:
        return [r.get("reason", "") for r in payload["results"] if r.get("result") == "rejected"]
    if isinstance(payload, dict) and "error" in payload:
        return [payload["error"]]
    if isinstance(payload, dict) and payload.get("result") == "rejected":
        return [payload.get("reason", "")]
    return []


def changed_anything(payload: Any) -> bool:
    """Whether a response reports that anything was stored: an accepted event, or
    a service refused on its merits (its rejection names the case whose record
    keeps the attempt)."""
    kept = lambda r: isinstance(r, dict) and (r.get("result") == "accepted" or (r.get("result") == "rejected" and r.get("case_id")))
    if isinstance(payload, dict) and "results" in payload:
        return any(kept(r) for r in payload["results"])
    return kept(payload)


@contextmanager
def custody_up(home: Path, *args: str, **env_extra: str) -> Iterator[dict[str, Any]]:
    """`custody up` itself, as an operator starts it, on a free loopback port."""
    import signal
    import subprocess
    import sys

    from tests.integration.cli import ROOT, custody_env

    port = free_port()
    env = custody_env(home, CUSTODY_HTTP_PORT=str(port), **env_extra)
    log = open(home / "up.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "custody", "up", *args], env=env, cwd=ROOT, stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"custody up did not start:\n{(home / 'up.log').read_text()}")
            time.sleep(0.1)
    try:
        yield {"base": f"http://127.0.0.1:{port}", "port": port, "env": env, "process": process, "home": home}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()


def settled(take, pause: float = 0.15, tries: int = 40):
    """A snapshot that two looks in a row agree on: whatever the system was
    still doing after the last accepted event (the backstop) has finished."""
    last = take()
    for _ in range(tries):
        time.sleep(pause)
        now = take()
        if now == last:
            return now
        last = now
    raise AssertionError("the database did not settle")
