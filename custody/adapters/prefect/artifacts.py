"""What operators see in the Prefect UI: the custody board and each case's
timeline. Neither carries the person's name, date of birth or A-number: the
UI shows case and booking numbers, and the record stays in our database."""
from __future__ import annotations

import re
from typing import Any

from custody.service.views import case_detail, format_past_due
from custody.service.views import format_left as _left
from custody.service.views import format_local as _local
from models.policy import Policy

OVERDUE = "OVERDUE"
WARNINGS_SHOWN = 90  # characters of a row's warnings on the board; the timeline has them all


def overdue(view: dict[str, Any]) -> bool:
    """Held past the time release was due, or past the deadline itself."""
    left = view["seconds_left"]
    return view["minutes_past_due"] is not None or (left is not None and left < 0)


def board_rows(views: list[dict[str, Any]], policy: Policy) -> list[dict[str, str]]:
    """One row per open case, narrow enough for a 1,400-pixel screen: an empty
    cell is empty (no placeholder to read past), an overdue row says so in its
    first cell, and the T0 and the full warnings are on the case's timeline."""
    def cell(text: str | None) -> str:
        return "" if text in (None, "-") else text

    def warnings(v: dict[str, Any]) -> str:
        text = "; ".join(v["warnings"])
        return text if len(text) <= WARNINGS_SHOWN else text[:WARNINGS_SHOWN - 3].rstrip() + "..."

    def left(v: dict[str, Any]) -> str:
        seconds = v["seconds_left"]
        return "" if seconds is None else (f"passed {_left(-seconds)} ago" if seconds < 0 else _left(seconds))

    return [{"!": OVERDUE if overdue(v) else "", "case": v["case_id"], "booking": v["booking_number"],
             "status": v["status"].replace("_", " "), "deadline": cell(_local(v["deadline_at"], policy)),
             "time left": left(v), "past release due": cell(format_past_due(v["minutes_past_due"])),
             "served by": v["served_by"] or "",
             "ICE notices not acknowledged": ", ".join(v.get("unacknowledged_ice_notices", [])),
             "warnings": warnings(v)} for v in views]


# The board is republished every minute, and Prefect keeps every version: its
# size must follow the holds that need attention, not the cases that wait
# (months, by the thousand) for the person's release.
BOARD_ROWS = 200



def board_description(views: list[dict[str, Any]], counts: dict[str, int], at: str, policy: Policy) -> str:
    total = sum(counts.values())
    shown = f"all {total}" if len(views) == total else f"the {len(views)} soonest of {total}"
    by_status = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(counts.items()))
    past = sum(1 for v in views if overdue(v))
    alarm = f" {past} {OVERDUE}: held past the time release was due." if past else ""
    return (f"Open cases, releases ordered first, then soonest deadline: {shown} ({by_status or 'none'}), "
            f"at {_local(at, policy)}.{alarm}")


# The marks that make inline Markdown or HTML: links and images, emphasis,
# code, raw HTML and entities, table cells, math. Plain '.', '-', ':' stay as
# they are, so case and booking numbers read (and are found) unchanged.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]()!|<>&~$])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x85\x0b\x0c]+")


def literal(value: Any) -> str:
    """Text that came from outside (a lift note, an officer's name) shown as
    the very characters sent: the UI renders this artifact as Markdown, so a
    note like `![x](http://...)` or `<script>` would otherwise become an image
    fetched from anywhere or markup. CommonMark lets any ASCII punctuation be
    escaped with a backslash, which also keeps a `|` inside its table cell.
    Every cell is inline text, so the marks that only count at the start of a
    line (`#`, `-`, `1.`) cannot start a block here."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(value)))


# The board's page in the Prefect UI: always its latest version.
BOARD_KEY = "custody-board"
BOARD_LINK = f"[The custody board: every open case](/artifacts/key/{BOARD_KEY})"


def timeline_markdown(view: dict[str, Any], policy: Policy) -> str:
    md = literal
    lines = [f"# Case {md(view['case_id'])} (booking {md(view['booking_number'])})", "", BOARD_LINK, "",
             f"* **Status:** {md(view['status'])}" + (f": {md(view['status_reason'])}" if view["status_reason"] else ""),
             f"* **T0:** {md(_local(view['t0'], policy))}",
             f"* **Deadline:** {md(_local(view['deadline_at'], policy))} ({md(view['deadline_at'] or '-')})",
             f"* **Hold:** {'authorised' if view['hold_authorized'] else 'not authorised'}"
             + (f" ({md(view['no_hold_reason'])})" if view["no_hold_reason"] else ""), ""]
    lines += [f"* WARNING: {md(w)}" for w in view["warnings"]]
    lines += ["", "| when (local) | what | status | who | detail |", "|---|---|---|---|---|"]
    for item in view["timeline"]:
        if item["kind"] == "event":
            row = (item["type"], "", item["sender"], item["outcome"])
        else:
            change = item["status_after"] if item["status_before"] == item["status_after"] else f"{item['status_before'] or 'new'} → {item['status_after']}"
            row = (item["action"], change or "", item["actor"], item["reason"])
        cells = [_local(item["at"], policy), *row]
        lines.append("| " + " | ".join(md(c) for c in cells) + " |")
    return "\n".join(lines)


def timeline_key(case_id: str) -> str:
    return f"case-{case_id.lower()}-timeline"


def timeline_for(c, case_id: str) -> str:
    with c.uow(read_only=True) as uow:
        view = case_detail(uow, uow.cases.get(case_id), c.policy, c.clock.now())
    return timeline_markdown(view, c.policy)



def publish_timeline_for_run(c, case_id: str, flow_run_id: str) -> None:
    """The same timeline, published by the sync through the API and attached to
    the case's run, so the UI stays current when a commit needs no new run
    process (one API call instead of a process)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    with get_client(sync_client=True) as client:
        client.create_artifact(ArtifactCreate(key=timeline_key(case_id), type="markdown", data=timeline_for(c, case_id),
                                              description=f"Timeline of case {case_id}", flow_run_id=UUID(flow_run_id)))
        keep_only_latest_timeline(client, case_id, flow_run_id)


def keep_only_latest_timeline(client, case_id: str, flow_run_id: str) -> int:
    """One current timeline per case run: the run's Artifacts tab listed every
    version, the first one stale ("held" for a case since released). The
    versions' history is the audit trail's, not the UI's. Returns how many went."""
    from uuid import UUID

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[timeline_key(case_id)]),
                                                                 flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)])),
                                  sort=ArtifactSort.CREATED_DESC, limit=50)
    for older in found[1:]:
        client.delete_artifact(older.id)
    return len(found[1:])
