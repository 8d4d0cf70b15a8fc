"""Building open cases for the benchmarks.

Through the real intake (`ingest`, the same handler POST /events calls) for
everything whose timing is measured; by copying real rows for the very large
background populations (100,000 open cases), which the intake would take many
minutes to build on this machine. A copy is made from rows the real intake
wrote for a template case, with its identifiers renamed and its audit hash
chain recomputed, so the tables look exactly as the intake leaves them."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import func, insert, select, text

from bench.common import RELEASE_ORDER_AFTER_T0, detainer_event, now, release_event
from custody.service.core import Core, Sender
from custody.store import schema as t
from models.audit_chain import GENESIS, entry_hash
from models.clock import FixedClock

SETUP = Sender("bench-setup")


def ingest_ok(core: Core, event: dict[str, Any]) -> str:
    from custody.service.intake import ingest

    result = ingest(core, event, SETUP)
    if result.result != "accepted":
        raise RuntimeError(f"setup event {event['event_id']} {result.result}: {result.reason}")
    return result.case_id


def timed_holds(core: Core, key: str, series: int, offsets: list[float], margin: float = 8.0,
                send: Callable[[dict[str, Any]], str] | None = None) -> tuple[datetime, dict[str, datetime]]:
    """Held cases whose release orders fall at window_start + each offset
    (seconds), the window starting `margin` seconds after the cases are ready.

    The detainers go in first; the release authorisations (which start the
    holds and fix each release order at T0 + 46 h) go in second, with the
    window placed after the time they are measured to take, so no case falls
    due while the population is still being written. `send` delivers one event
    and returns its case id (default: the intake handler in this process)."""
    send = send or (lambda event: ingest_ok(core, event))
    received = now() - RELEASE_ORDER_AFTER_T0 - timedelta(hours=2)
    started = time.perf_counter()
    for n in range(len(offsets)):
        send(detainer_event(key, n, received, series))
    per_event = (time.perf_counter() - started) / max(1, len(offsets))
    window_start = now() + timedelta(seconds=per_event * len(offsets) * 2.5 + margin)
    due: dict[str, datetime] = {}
    for n, offset in enumerate(offsets):
        at = window_start + timedelta(seconds=offset)
        case_id = send(release_event(key, n, at - RELEASE_ORDER_AFTER_T0))
        due[case_id] = at
    if now() >= window_start:
        raise RuntimeError("the population took longer to write than planned; its first release orders are already due")
    return window_start, due


def past_holds(core: Core, key: str, series: int, due_times: list[datetime]) -> dict[str, datetime]:
    """Held cases whose release orders fell due at the given (past) instants,
    written as the intake would have written them before those instants (the
    clock is set to a minute before the first one), so their release orders
    are still to be given."""
    clock = FixedClock(min(due_times) - timedelta(minutes=1))
    setup = Core(core.engine, core.policy, clock)
    received = clock.now() - RELEASE_ORDER_AFTER_T0 - timedelta(hours=2)
    due: dict[str, datetime] = {}
    for n, at in enumerate(due_times):
        ingest_ok(setup, detainer_event(key, n, received, series))
        due[ingest_ok(setup, release_event(key, n, at - RELEASE_ORDER_AFTER_T0))] = at
    return due


def waiting_cases(core: Core, key: str, series: int, count: int, start: int = 0) -> list[str]:
    """Cases waiting for the person's release (status awaiting_release): the
    bulk of what a jail has open, for months at a time."""
    received = now() - timedelta(days=3)
    return [ingest_ok(core, detainer_event(key, n, received, series)) for n in range(start, start + count)]


# --- copies of real rows, for very large background populations ----------------------------

def copy_cases(core: Core, template_case_id: str, copies: int, key: str, series: int, start: int = 0, chunk: int = 2000) -> None:
    """`copies` new cases (numbered from `start`) whose rows are those the
    intake wrote for the template case, renamed (case id, booking, A-number
    (series, number), event ids) and re-chained."""
    with core.engine.connect() as conn:
        case = dict(conn.execute(select(t.cases).where(t.cases.c.case_id == template_case_id)).mappings().one())
        booking = dict(conn.execute(select(t.bookings).where(t.bookings.c.booking_number == case["booking_number"])).mappings().one())
        detainers = [dict(r) for r in conn.execute(select(t.detainers).where(t.detainers.c.case_id == template_case_id)
                                                   .order_by(t.detainers.c.id)).mappings()]
        inbox = [dict(r) for r in conn.execute(select(t.inbox).where(t.inbox.c.case_id == template_case_id)).mappings()]
        audit = [dict(r) for r in conn.execute(select(t.audit).where(t.audit.c.chain == template_case_id)
                                               .order_by(t.audit.c.seq)).mappings()]
        outbox = [dict(r) for r in conn.execute(select(t.outbox).where(t.outbox.c.case_id == template_case_id)).mappings()]
        next_detainer = (conn.execute(select(func.max(t.detainers.c.id))).scalar_one() or 0) + 1
    old_booking, old_a = case["booking_number"], case["a_number"]
    old_ids = {r["event_id"] for r in inbox}

    def rename(value: Any, n: int, new_case: str, new_booking: str, new_a: str) -> Any:
        if not isinstance(value, str):
            return value
        value = value.replace(template_case_id, new_case).replace(old_booking, new_booking).replace(old_a, new_a)
        for event_id in old_ids:
            if event_id in value:
                value = value.replace(f'"{event_id}"', f'"{event_id}-x{n}"') if value.startswith("{") else (
                    f"{event_id}-x{n}" if value == event_id else value)
        return value

    for first in range(start, start + copies, chunk):
        rows: dict[str, list[dict[str, Any]]] = {"bookings": [], "cases": [], "detainers": [], "inbox": [], "audit": [], "outbox": []}
        for n in range(first, min(start + copies, first + chunk)):
            new_case, new_booking, new_a = f"{key}-{n:06d}", f"{key}-CB{n}", f"A{series:03d}{n:06d}"
            r = lambda v: rename(v, n, new_case, new_booking, new_a)  # noqa: E731
            rows["bookings"].append({k: r(v) for k, v in booking.items()})
            ids = {}
            for d in detainers:
                ids[d["id"]] = next_detainer
                rows["detainers"].append({**{k: r(v) for k, v in d.items()}, "id": next_detainer,
                                          "ice_event_number": f"{d['ice_event_number']}-x{n}"})
                next_detainer += 1
            rows["cases"].append({**{k: r(v) for k, v in case.items()}, "current_detainer_id": ids[case["current_detainer_id"]]})
            rows["inbox"].extend({k: r(v) for k, v in e.items()} for e in inbox)
            prev = GENESIS
            for a in audit:
                entry = {k: r(v) for k, v in a.items() if k not in ("id", "entry_hash", "prev_hash")}
                entry["prev_hash"] = prev
                entry["entry_hash"] = prev = entry_hash(prev, entry)
                rows["audit"].append(entry)
            rows["outbox"].extend({k: r(v) for k, v in o.items() if k != "id"} for o in outbox)
        with core.engine.begin() as conn:
            for name, table in (("bookings", t.bookings), ("detainers", t.detainers), ("cases", t.cases),
                                ("inbox", t.inbox), ("audit", t.audit), ("outbox", t.outbox)):
                if rows[name]:
                    conn.execute(insert(table), rows[name])
    if core.engine.dialect.name == "postgresql":
        with core.engine.begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('detainers', 'id'), (SELECT max(id) FROM detainers))"))


def table_bytes(core: Core) -> dict[str, int]:
    """Bytes the application's tables and their indexes take on disk."""
    with core.engine.connect() as conn:
        if core.engine.dialect.name == "sqlite":
            rows = conn.execute(text("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")).all()
            return {name: int(size) for name, size in rows}
        rows = conn.execute(text(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'")).all()
        return {name: int(size) for name, size in rows}


def database_bytes(core: Core) -> int:
    with core.engine.connect() as conn:
        if core.engine.dialect.name == "sqlite":
            return int(conn.execute(text("PRAGMA page_count")).scalar_one() * conn.execute(text("PRAGMA page_size")).scalar_one())
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def open_count(core: Core) -> int:
    from custody.store.repositories.cases import OPEN
    with core.engine.connect() as conn:
        return conn.execute(select(func.count()).where(t.cases.c.status.in_(OPEN))).scalar_one()


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
