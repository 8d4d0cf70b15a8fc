"""Units of work that produce a report or a roster watch and queue it for the
groups that must read it (through the outbox, like every notification)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from custody.service.core import Core
from custody.service.reporting.figures import Figures, Period
from custody.service.reporting.report import ChartDrawer, ReportFiles, gather, markdown, write_report
from custody.service.reporting.roster_watch import RosterWatch, watch
from models.domain import Transition

REPORT_GROUPS = ("sheriff", "supervisors")


@dataclass(frozen=True)
class MadeReport:
    kind: str
    label: str
    figures: Figures
    files: ReportFiles
    queued: int


def previous_period(kind: str, today: date) -> tuple[date, date, str]:
    """The last whole month or year before `today` (local date), and its label."""
    if kind == "monthly":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last, last.strftime("%Y-%m")
    if kind == "annual":
        year = today.year - 1
        return date(year, 1, 1), date(year, 12, 31), str(year)
    raise ValueError(f"kind: must be 'monthly' or 'annual', not {kind!r}")


def make_report(core: Core, first: date, last: date, folder: Path, draw_charts: ChartDrawer) -> tuple[Figures, ReportFiles]:
    period = Period.of_days(first, last, core.policy)
    with core.uow(read_only=True) as uow:
        figures = gather(uow, period, core.policy, core.clock.now())
    return figures, write_report(figures, core.policy, folder, core.clock.now(), draw_charts)


def publish_periodic_report(core: Core, kind: str, reports_home: Path, draw_charts: ChartDrawer,
                            today: date | None = None) -> MadeReport:
    """The monthly or annual report, queued once (its idempotency key is the
    period) to the sheriff and supervisors, however often the run is retried."""
    today = today or core.clock.now().astimezone(core.policy.timezone).date()
    first, last, label = previous_period(kind, today)
    figures, files = make_report(core, first, last, reports_home / f"{kind}-{label}", draw_charts)
    over = len(figures.over_detentions)
    subject = f"custody {kind} report {label}: {over} over-detention(s)"
    now = core.clock.now()
    body = markdown(figures, core.policy, now, image=lambda name: str(files.folder / name))
    with core.uow() as uow:
        queued = uow.outbox.add_alert(key=f"report:{kind}:{label}", kind=f"{kind}-report", groups=REPORT_GROUPS,
                                      urgency="urgent" if over else "info", subject=subject, body=body, now=now)
        if queued:
            uow.audit.add(case_id=None, at=now, actor=f"{kind}-report", source_event_id=None,
                          transition=Transition("report_sent", None, None,
                                                f"{kind} report {label} sent to {', '.join(REPORT_GROUPS)} ({files.folder})"))
        uow.commit()
    return MadeReport(kind, label, figures, files, queued)


def send_roster_watch(core: Core, window_days: int = 30) -> tuple[RosterWatch, int]:
    """Once a day at most (the key is the local date): supervisors learn of
    expiring certifications and uncovered days while there is time to act."""
    now = core.clock.now()
    today = now.astimezone(core.policy.timezone).date()
    with core.uow(read_only=True) as uow:
        found = watch(uow.roster.current(), core.policy, today, window_days)
    if not found.anything_to_report:
        return found, 0
    uncovered = any(found.uncovered.values())
    parts = ([f"{len(found.expiring)} certification(s) expiring"] if found.expiring else []) + \
            (["days without a certified officer"] if uncovered else [])
    with core.uow() as uow:
        queued = uow.outbox.add_alert(key=f"roster-watch:{today.isoformat()}", kind="roster-watch", groups=("supervisors",),
                                      urgency="warning" if uncovered else "info",
                                      subject=f"WSO roster watch {today.isoformat()}: " + "; ".join(parts),
                                      body=found.text(), now=now)
        if queued:
            uow.audit.add(case_id=None, at=now, actor="roster-watch", source_event_id=None,
                          transition=Transition("roster_watch_sent", None, None, found.text().splitlines()[0]))
        uow.commit()
    return found, queued
