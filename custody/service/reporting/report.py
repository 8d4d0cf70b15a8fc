"""A period report as a folder: report.md, one CSV per table, PNG charts.

Used by `custody report`, the monthly and annual deployments and the tests."""
from __future__ import annotations

import base64
import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from custody.service.reporting.figures import FORMS, OUTCOMES, Figures, Period, compute, summary_stats
from custody.service.reporting.roster_watch import days_without_officer, format_days
from custody.store.unit_of_work import SqlUnitOfWork
from models.clock import iso_z
from models.policy import Policy

COUNTING_RULES = (
    "Detainers are counted when received. Cases are counted by how they ended, if they ended in the period, "
    "or as still open if they were opened before the period's end and had not ended by then. Time held runs from T0 "
    "(the moment the person would otherwise have been released) to leaving custody, for cases in which a hold was "
    "authorised. A person is over-detained if they left custody after their release was due, or were still in "
    "custody past it at the end of the period with no release recorded, and the minutes count from when it was due, "
    "case by case: with a hold, its deadline (T0 plus the limit); without authority to hold, the moment the person "
    "would otherwise have gone free, plus the officer's service window where the detainer could have authorised a "
    "hold (rule 6), plus the release desk's allowance for a release ordered without a hold (the policy's "
    "page_supervisors_before); a lifted detainer, the lift plus that allowance. This report carries no names, dates of birth or "
    "A-numbers; `custody case record ID` gives one case's full record."
)


def gather(uow: SqlUnitOfWork, period: Period, policy: Policy, now: datetime) -> Figures:
    figures = compute(period, policy, uow.cases.opened_before(period.end),
                      uow.detainers.received_between(period.start, period.end),
                      uow.outbox.created_between(period.start, period.end),
                      uow.bookings.first_seen_between(period.start, period.end), now=now)
    figures.roster_days_without_officer = sorted(
        {day for days in days_without_officer(uow.roster.history(), policy, period.first, period.last).values() for day in days})
    return figures


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    markdown: Path
    csvs: list[Path]
    charts: list[Path]


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def tables(figures: Figures, policy: Policy) -> dict[str, tuple[list[str], list[list]]]:
    """Every table of the report, as (header, rows): the CSV files and the Markdown share them."""
    local = lambda instant: policy.local(instant).strftime("%Y-%m-%d %H:%M %Z") if instant else "-"
    return {
        "detainers-by-form": (["form", "detainers"], [[label, figures.detainers_by_form[k]] for k, label in FORMS]),
        "outcomes": (["outcome", "cases"], [[label, figures.outcomes[k]] for k, label in OUTCOMES]),
        "hours-held": (["case", "hours_held"], [[c, f"{h:.3f}"] for c, h in figures.hours_held]),
        "pickup-delay": (["case", "hours_from_hold_start_to_pickup"], [[c, f"{h:.3f}"] for c, h in figures.pickup_delay_hours]),
        "over-detentions": (["case", "booking", "release_due_utc", "release_due_local", "due_because", "left_custody_utc",
                             "minutes_past_due", "how", "hold_deadline_utc"],
                            [[o.case_id, o.booking_number, iso_z(o.release_due_at), local(o.release_due_at), o.due_because,
                              iso_z(o.left_at) or "-", o.minutes_past, o.how, iso_z(o.deadline_at)]
                             for o in figures.over_detentions]),
        "ice-notices": (["notice", "total", "sent", "acknowledged", "failed", "pending"],
                        [[k, c["total"], c["sent"], c["acknowledged"], c["failed"], c["pending"]] for k, c in figures.ice_notices.items()]),
        "services-per-officer": (["badge", "services"], [[b, n] for b, n in figures.services_per_officer.items()]),
        "failed-notifications": (["outbox_id", "case", "notice", "group", "attempts", "last_error", "escalated_to",
                                  "escalation_state", "delivered_in_the_end"],
                                 [[f.outbox_id, f.case_id or "-", f.kind, f.group, f.attempts, f.last_error,
                                   " ".join(f.escalated_to) or "NOT ESCALATED", " ".join(f.escalation_states) or "-",
                                   "yes" if f.state == "sent" else "no (still retried)"]
                                  for f in figures.failed_notices]),
        "days-without-certified-officer": (["date"], [[d.isoformat()] for d in figures.roster_days_without_officer]),
    }


def _md_table(header: list[str], rows: list[list]) -> list[str]:
    cell = lambda v: str(v).replace("|", "/").replace("\n", " ")
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return out


def markdown(figures: Figures, policy: Policy, generated_at: datetime,
             image: Callable[[str], str] = lambda name: name) -> str:
    """`image` turns a chart's file name into what the Markdown links to (the
    file beside it, or a data URI for the Prefect artifact)."""
    t = tables(figures, policy)
    over = figures.over_detentions
    held = summary_stats([h for _, h in figures.hours_held])
    pickup = summary_stats([h for _, h in figures.pickup_delay_hours])
    ice = figures.ice_notice_totals
    lines = [
        f"# Custody report, {figures.period.label}",
        "",
        f"Jurisdiction policy: {policy.name} ({policy.mode} mode, hold limit {figures.hold_limit_hours:g} h, time zone {policy.timezone.key}). "
        f"Generated {iso_z(generated_at)}.",
        "",
        f"**Over-detentions: {len(over)}**" + (" (the goal is none)." if over else " (the goal is none: met)."),
        "",
        "| figure | value |", "|---|---|",
        f"| bookings with events in the period (first heard of) | {figures.bookings_seen} |",
        f"| detainers received | {sum(figures.detainers_by_form.values())} |",
        f"| cases ended in the period | {sum(v for k, v in figures.outcomes.items() if k != 'still_open')} |",
        f"| cases still open at the end | {figures.outcomes['still_open']} |",
        f"| holds, median / p90 / max hours after T0 | {_fmt(held['median'])} / {_fmt(held['p90'])} / {_fmt(held['max'])} |",
        f"| ICE pickups after the hold started, median / p90 / max hours | {_fmt(pickup['median'])} / {_fmt(pickup['p90'])} / {_fmt(pickup['max'])} |",
        f"| notices to ICE sent / acknowledged / failed / pending | {ice['sent']} / {ice['acknowledged']} / {ice['failed']} / {ice['pending']} |",
        f"| notifications that failed | {len(figures.failed_notices)} |",
        f"| days without a certified officer on the roster | {len(figures.roster_days_without_officer)} |",
        "",
        "## Over-detentions",
        "",
    ]
    lines += _md_table(*t["over-detentions"]) if over else ["None."]
    lines += ["", "## Detainers received by form", "", *_md_table(*t["detainers-by-form"]), "",
              f"![Detainers by form]({image('detainers-by-form.png')})", "",
              "## Cases by outcome", "", *_md_table(*t["outcomes"]), "", f"![Cases by outcome]({image('outcomes.png')})", "",
              "## Time held", "",
              f"{held['count']} holds ended in the period. The dashed line is the legal limit.", "",
              f"![Hours held]({image('hours-held.png')})", "",
              "## ICE pickup delay after the hold started", "",
              f"{pickup['count']} pickups by ICE of a person held on the detainer (timed from the hold's start: T0, or the service where it came after T0).", "",
              f"![Pickup delay]({image('pickup-delay.png')})", "",
              "## Notices to ICE", "", *(_md_table(*t["ice-notices"]) if figures.ice_notices else ["None."]), "",
              "## Warrant services per officer", "",
              *(_md_table(*t["services-per-officer"]) if figures.services_per_officer else ["None."]), "",
              f"![Services per officer]({image('services-per-officer.png')})", "",
              "## Notifications that failed, and their escalation", "",
              *(_md_table(*t["failed-notifications"]) if figures.failed_notices else ["None."]), "",
              "## Days without a certified officer on the roster", "",
              format_days(figures.roster_days_without_officer) or "None.", "",
              "## How this report counts", "", COUNTING_RULES, ""]
    return "\n".join(lines)


# Draws the report's charts into its folder and returns their files (custody/adapters/charts.py).
ChartDrawer = Callable[[Figures, Path], list[Path]]


def write_report(figures: Figures, policy: Policy, folder: Path, generated_at: datetime,
                 draw_charts: ChartDrawer) -> ReportFiles:
    folder.mkdir(parents=True, exist_ok=True)
    csvs = []
    for name, (header, rows) in tables(figures, policy).items():
        path = folder / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
        csvs.append(path)
    drawn = draw_charts(figures, folder)
    md = folder / "report.md"
    md.write_text(markdown(figures, policy, generated_at), encoding="utf-8")
    return ReportFiles(folder, md, csvs, drawn)


def markdown_with_embedded_charts(files: ReportFiles, figures: Figures, policy: Policy, generated_at: datetime) -> str:
    """The same report with its charts inline, for the Prefect UI's Markdown artifact."""
    def data_uri(name: str) -> str:
        return "data:image/png;base64," + base64.b64encode((files.folder / name).read_bytes()).decode()
    return markdown(figures, policy, generated_at, image=data_uri)
