"""The monthly and annual reports and the daily roster watch, on schedules.

A report is published in the Prefect UI as a Markdown artifact with its charts
inline, written as a folder under the data folder's `reports/`, and queued to
the sheriff and supervisors through the outbox (once per period, however often
the run is retried)."""
from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from custody.config import Settings
from custody.service.reporting.dispatch import publish_periodic_report, send_roster_watch
from custody.service.reporting.report import markdown_with_embedded_charts
from custody.wiring import core_for_run


@flow(name="custody-report", persist_result=False)
def periodic_report(kind: str = "monthly", today: date | None = None) -> dict:
    """`kind` is monthly or annual; it covers the last whole month or year before `today` (default: today, local)."""
    from custody.adapters.charts import draw_all  # matplotlib: loaded by the report's run, not by every served flow

    with core_for_run() as core:
        made = publish_periodic_report(core, kind, Settings.from_env().home / "reports", draw_all, today)
        create_markdown_artifact(key=f"{kind}-report",
                                 markdown=markdown_with_embedded_charts(made.files, made.figures, core.policy, core.clock.now()),
                                 description=f"{kind.capitalize()} custody report {made.label}: "
                                             f"{len(made.figures.over_detentions)} over-detention(s)")
    get_run_logger().info("%s report %s written to %s; %d notification(s) queued", kind, made.label, made.files.folder, made.queued)
    return {"label": made.label, "folder": str(made.files.folder), "queued": made.queued,
            "over_detentions": len(made.figures.over_detentions)}


@flow(name="custody-roster-watch", persist_result=False)
def roster_watch(within_days: int = 30) -> dict:
    with core_for_run() as core:
        found, queued = send_roster_watch(core, within_days)
    get_run_logger().info("%s (queued %d)", found.text(), queued)
    return {"expiring": [e.badge for e in found.expiring],
            "uncovered": {f: [d.isoformat() for d in days] for f, days in found.uncovered.items()}, "queued": queued}
