"""Intake: events accepted per second through POST /events of `custody up`
(without Prefect, so only the intake is measured), durable on disk (SQLite with
synchronous=FULL as the product configures it; PostgreSQL with its defaults).

Each case is two events, as a jail sends them: the detainer (opens the case)
and the release authorisation (starts the hold, schedules its release order,
writes the notices). Measured with a background of 1,000 and of 10,000 cases
already open, to show how intake cost grows with what is waiting."""
from __future__ import annotations

import sys
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.common import TOKEN, Workspace, Workspaces, detainer_event, measured, now, release_event, summary, wait_http
from bench.population import copy_cases, waiting_cases
from custody.store import schema as t


def _events(key: str, series: int, cases: int) -> list[dict[str, Any]]:
    at = now() - timedelta(hours=1)
    events = []
    for n in range(cases):
        events.append(detainer_event(key, n, at - timedelta(minutes=30), series))
        events.append(release_event(key, n, at))
    return events


def _post_single(port: int, events: list[dict], clients: int) -> tuple[float, list[float]]:
    """Each event in its own request; `clients` senders at once, each with its
    own cases (a case's two events stay in order)."""
    per_client = [events[i::clients] if clients == 1 else [] for i in range(clients)]
    if clients > 1:
        pairs = [events[i:i + 2] for i in range(0, len(events), 2)]
        for i, pair in enumerate(pairs):
            per_client[i % clients].extend(pair)
    latencies: list[float] = []
    errors: list[str] = []

    def run(mine: list[dict]) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as client:
            for e in mine:
                started = time.perf_counter()
                response = client.post("/events", json=e)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 201:
                    errors.append(f"{e['event_id']}: {response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=run, args=(mine,)) for mine in per_client]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} events refused, e.g. {errors[0]}")
    return elapsed, latencies


def _post_batched(port: int, events: list[dict], batch: int) -> tuple[float, list[float]]:
    latencies = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300) as client:
        started = time.perf_counter()
        for first in range(0, len(events), batch):
            chunk = events[first:first + batch]
            t0 = time.perf_counter()
            response = client.post("/events", json=chunk)
            latencies.append((time.perf_counter() - t0) * 1000)
            results = response.json()["results"]
            refused = [r for r in results if r["result"] != "accepted"]
            if response.status_code != 200 or refused:
                raise RuntimeError(f"batch refused: {response.status_code} {refused[:1]}")
        return time.perf_counter() - started, latencies


def _inbox(core) -> int:
    with core.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.inbox)).scalar_one()


def intake(spaces: Workspaces, kind: str, n_events: int, batch: int, backgrounds: tuple[int, ...] = (1_000, 10_000)) -> dict[str, Any]:
    result: dict[str, Any] = {"kind": kind, "events": n_events, "batch": batch, "rows": []}
    for background in backgrounds:
        ws: Workspace = spaces.new(f"intake-{background}", kind)
        setup = ws.core(setup=True)
        template = waiting_cases(setup, "iw", 300, 1)[0]
        copy_cases(setup, template, background - 1, "iwc", 301, start=1)
        setup.engine.dispose()
        core = ws.core()
        proc, port = ws.start_up("custody-up")
        wait_http(f"http://127.0.0.1:{port}/health")
        row: dict[str, Any] = {"background_open": background}
        cases = n_events // 2
        series = 310
        for label, send in (("single, 1 client", lambda ev: _post_single(port, ev, 1)),
                            ("single, 4 clients", lambda ev: _post_single(port, ev, 4)),
                            (f"batches of {batch}", lambda ev: _post_batched(port, ev, batch))):
            events = _events(f"i{series}", series, cases)
            before = _inbox(core)
            with measured():
                elapsed, latencies = send(events)
            stored = _inbox(core) - before
            if stored != len(events):
                raise RuntimeError(f"{label}: {stored} events stored of {len(events)} accepted")
            row[label] = {"events_per_s": len(events) / elapsed, "request_ms": summary(latencies), "events": len(events)}
            print(f"   intake {kind} ({background} open) {label}: {len(events) / elapsed:.0f} events/s", file=sys.stderr, flush=True)
            series += 1
        ws.stop(proc)
        core.engine.dispose()
        result["rows"].append(row)
    return result
