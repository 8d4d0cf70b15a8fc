"""The invariants the soak proves at the end, each a figure with its bound.

Read from the application database (the truth) and the Prefect API (its
mirror) after the system has settled."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from custody.store import schema as t

OPEN = {"awaiting_release", "release_authorized", "held", "release_ordered"}
TERMINAL = {"transferred", "released", "closed"}
ORDER_SLACK = timedelta(minutes=1)


@dataclass
class Figure:
    name: str
    value: Any
    bound: str           # what it must be, in words
    ok: bool | None      # None: counted, no bound


def _rows(engine: Engine, table) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table)).mappings()]


def database_invariants(engine: Engine, sent: dict[str, set[str]], now: datetime, grace: timedelta) -> tuple[list[Figure], dict]:
    """`sent`: event ids by the answer they got ('accepted', 'duplicate', 'rejected', ...)."""
    cases = _rows(engine, t.cases)
    audit = _rows(engine, t.audit)
    inbox = {r["event_id"]: r for r in _rows(engine, t.inbox)}
    outbox = _rows(engine, t.outbox)
    attempts = _rows(engine, t.delivery_attempts)
    figures: list[Figure] = []

    # 1. No hold ran past its deadline: whoever was held left custody by the
    #    deadline (the release desk confirmed, or ICE took custody).
    past = []
    for c in cases:
        if not c["hold_started_at"] or c["deadline_at"] is None:
            continue
        left = c["transferred_at"] if c["status"] == "transferred" else c["released_at"]
        if (left is not None and left > c["deadline_at"]) or (left is None and now > c["deadline_at"]):
            past.append(c["case_id"])
        elif c["status"] == "held" and now > c["deadline_at"]:
            past.append(c["case_id"])
    figures.append(Figure("holds that ran past their deadline", len(past), "0", not past))

    # 2. Release orders on time: after their due instant plus one minute is a failure.
    #    An order cannot be due before the system learned the fact it rests on
    #    (a T0 or a service that arrived late), so lateness counts from then.
    learned: dict[str, datetime] = {}
    for a in audit:
        if a["case_id"] and a["action"] in ("release_authorized", "hold_started"):
            learned[a["case_id"]] = max(a["at"], learned.get(a["case_id"], a["at"]))
    lateness = []
    for c in cases:
        if c["release_ordered_at"] is None:
            continue
        reason = c["release_order_reason"] or ""
        if reason.startswith("no certified WSO") and c["release_authorized_at"] is not None:
            due = c["release_authorized_at"] + grace
        elif c["hold_started_at"] and c["release_order_at"] is not None and ("deadline" in reason or "release-order time" in reason):
            due = c["release_order_at"]
        else:
            continue  # ordered at once on an event (a lift, a corrected T0)
        due = max(due, learned.get(c["case_id"], due))
        lateness.append((c["case_id"], (c["release_ordered_at"] - due).total_seconds()))
    late = [cid for cid, s in lateness if s > ORDER_SLACK.total_seconds()]
    figures.append(Figure("release orders issued after their time + 1 min", len(late), "0", not late))
    if lateness:
        ordered = sorted(s for _, s in lateness)
        figures.append(Figure("release-order lateness p50 / p99 / max (s)",
                              f"{ordered[len(ordered) // 2]:.2f} / {ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]:.2f} / {ordered[-1]:.2f}",
                              "≤ 60 s each", ordered[-1] <= ORDER_SLACK.total_seconds()))

    # 3. Every accepted event stored once and applied once.
    accepted = sent.get("accepted", set()) | sent.get("duplicate", set())
    missing = [e for e in accepted if e not in inbox]
    per_event_action = Counter((a["source_event_id"], a["action"]) for a in audit if a["source_event_id"])
    twice = [k for k, n in per_event_action.items() if n > 1 and k[1] not in ("reminder",)]
    per_case_step = Counter((a["case_id"], a["action"]) for a in audit if a["action"] in
                            ("hold_started", "release_ordered", "warrant_served", "released", "transferred", "case_opened"))
    doubled_steps = [k for k, n in per_case_step.items() if n > 1]
    figures.append(Figure("accepted events missing from the inbox", len(missing), "0", not missing))
    figures.append(Figure("events or case steps applied more than once", len(twice) + len(doubled_steps), "0",
                          not twice and not doubled_steps))
    figures.append(Figure("events accepted / answered duplicate / rejected",
                          f"{len(sent.get('accepted', ()))} / {len(sent.get('duplicate', ()))} / {len(sent.get('rejected', ()))}",
                          "none rejected", not sent.get("rejected")))

    # 4. Notifications: all delivered; any delivered twice is counted.
    states = Counter(r["state"] for r in outbox)
    per_channel_ok = Counter((a["outbox_id"], a["channel"]) for a in attempts if a["ok"])
    twice_sent = sum(1 for n in per_channel_ok.values() if n > 1)
    # A staff prompt whose purpose passed before it could be sent is dropped with its reason (models/notices.py):
    # settled, not lost; every other row must be delivered.
    settled = states.get("sent", 0) + states.get("dropped", 0)
    figures.append(Figure("outbox rows delivered (or dropped as moot) / all",
                          f"{states.get('sent', 0)} (+{states.get('dropped', 0)}) / {len(outbox)}", "all", settled == len(outbox)))
    figures.append(Figure("outbox rows delivered twice (by the relay's own record)", twice_sent, "counted", None))

    # 5. The audit trail is complete: every status change has its entry, in order.
    by_case: dict[str, list[dict]] = {}
    for a in sorted(audit, key=lambda a: (a["chain"], a["seq"])):
        if a["case_id"]:
            by_case.setdefault(a["case_id"], []).append(a)
    gaps = []
    for c in cases:
        status = None
        for a in by_case.get(c["case_id"], []):
            if a["status_before"] != status and not (status is None and a["status_before"] is None):
                gaps.append(c["case_id"])
                break
            status = a["status_after"] if a["status_after"] is not None else status
        else:
            if status != c["status"]:
                gaps.append(c["case_id"])
    figures.append(Figure("cases whose audit trail misses a status change", len(gaps), "0", not gaps))

    # 6. Nothing stuck: an open case past T0 always has its next instant scheduled.
    stuck = [c["case_id"] for c in cases if c["status"] in ("release_authorized", "held") and c["next_due_at"] is None]
    unconfirmed = [c["case_id"] for c in cases if c["status"] == "release_ordered"]
    figures.append(Figure("cases stuck in a non-terminal state with nothing scheduled", len(stuck), "0", not stuck))
    figures.append(Figure("releases ordered but not confirmed at the end", len(unconfirmed), "0", not unconfirmed))

    details = {"past_deadline": past, "late_orders": late, "missing_events": missing[:20], "doubled": (twice + doubled_steps)[:20],
               "audit_gaps": gaps[:20], "stuck": stuck, "unconfirmed": unconfirmed,
               "outbox_states": dict(states), "statuses": dict(Counter(c["status"] for c in cases))}
    return figures, details


def officer_forms(engine: Engine, forms: list) -> tuple[list[Figure], list[str]]:
    """The WSOs who reported through the Prefect UI's form: a form Prefect stored
    before its window closed must have authorised the hold (the badge is
    certified, the warrant the case's), whatever the run's process did."""
    cases = {r["case_id"]: r for r in _rows(engine, t.cases)}
    timely = [f for f in forms if f.timely]
    lost = [f"{f.case_id or f.booking}: stored {f.closes - f.answered:.1f} s before the window closed, "
            f"but {cases[f.case_id]['status'] if f.case_id in cases else 'no case'}"
            for f in timely if not (f.case_id in cases and cases[f.case_id]["hold_started_at"] is not None
                                    and cases[f.case_id]["served_by"] == "W-1031")]
    late = [f for f in timely if f.last_15s]
    unshown = [f for f in forms if not f.timely]
    never_shown = [f for f in unshown if f.shown is None]
    margins = sorted(f.closes - f.answered for f in late)
    return [
        Figure("officers' forms submitted through the UI's resume request: stored before the window closed / "
               "of them in its last 15 s (closest margin) / not submitted in time (of them: the run never asked before the close)",
               (f"{len(timely)} / {len(late)} ({margins[0]:.1f} s) / " if margins else f"{len(timely)} / 0 / ")
               + f"{len(unshown)} ({len(never_shown)})", "counted", None),
        Figure("timely services lost (a form stored before its window closed that did not hold)", len(lost), "0", not lost),
    ], lost


def prefect_disagreements(engine: Engine, api_url: str) -> tuple[Figure, list[str]]:
    """Every case's run must mirror the database: ended with the case, or waiting while it is open;
    and no hold step may still be scheduled for a case that has ended."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType, FlowRunFilterTags
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    cases = {r["case_id"]: r["status"] for r in _rows(engine, t.cases)}
    runs = {r["case_id"]: r["flow_run_id"] for r in _rows(engine, t.case_runs)}
    waiting = {StateType.PAUSED, StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING}
    wrong = []
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            for case_id, status in sorted(cases.items()):
                run_id = runs.get(case_id)
                if not run_id:
                    wrong.append(f"{case_id}: {status} but no run")
                    continue
                state = client.read_flow_run(run_id).state.type
                if status in TERMINAL and state is not StateType.COMPLETED:
                    wrong.append(f"{case_id}: {status} but its run is {state.value}")
                elif status in OPEN and state not in waiting:
                    wrong.append(f"{case_id}: {status} but its run is {state.value}")
            leftovers, offset = [], 0
            while True:
                page = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                    tags=FlowRunFilterTags(all_=["hold-step"]),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))), limit=200, offset=offset)
                leftovers += page
                offset += len(page)
                if len(page) < 200:
                    break
            for run in leftovers:
                tag = next((x for x in run.tags if x.startswith("case-")), "")
                if cases.get(tag.removeprefix("case-")) in TERMINAL:
                    wrong.append(f"{tag}: ended, but hold step {run.name} is still scheduled")
    return Figure("Prefect runs whose state disagrees with the database", len(wrong), "0", not wrong), wrong


def mirror_work(engine: Engine, api_url: str) -> list[Figure]:
    """What keeping the mirror cost: every time a case run entered Running is a
    new process on the serve process's slots (1-2 CPU-seconds on two cores).
    Counted, no bound: the figures to compare between versions of the code."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType, FlowRunFilterTags
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    runs = [r["flow_run_id"] for r in _rows(engine, t.case_runs) if r["flow_run_id"]]
    cases = len(_rows(engine, t.cases))
    executions = 0
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            for run_id in runs:
                executions += sum(1 for s in client.read_flow_run_states(run_id) if s.type is StateType.RUNNING)
            steps = client.count_flow_runs(flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=["hold-step"]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(not_any_=[StateType.SCHEDULED, StateType.CANCELLED]))))
    per_case = f"{executions / cases:.2f}" if cases else "-"
    return [Figure("case-run executions (entries into Running) / per case", f"{executions} / {per_case}", "counted", None),
            Figure("hold-step runs started", steps, "counted", None)]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
