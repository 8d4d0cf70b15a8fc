"""`custody report` and `custody roster watch`."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import TextIO

from custody.service.core import Core
from custody.service.reporting.dispatch import make_report, send_roster_watch
from custody.service.reporting.figures import ReportPeriodError
from custody.service.reporting.roster_watch import watch


def _day(field: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportPeriodError(field, f"{text!r} is not a date (YYYY-MM-DD)")


def cmd_report(core: Core, args: argparse.Namespace, out: TextIO) -> int:
    try:
        first, last = _day("from", args.from_), _day("to", args.to)
        folder = Path(args.out) if args.out else args.settings.home / "reports" / f"{first.isoformat()}_{last.isoformat()}"
        # matplotlib costs a third of a second to import: only a report pays it.
        from custody.adapters.charts import draw_all
        figures, files = make_report(core, first, last, folder, draw_all)
    except ReportPeriodError as exc:
        sys.stderr.write(f"custody: {exc}; no report written\n")
        return 2
    if args.json:
        out.write(json.dumps({"folder": str(files.folder), "markdown": str(files.markdown),
                              "csv": [str(p) for p in files.csvs], "charts": [str(p) for p in files.charts],
                              "detainers_by_form": figures.detainers_by_form, "outcomes": figures.outcomes,
                              "over_detentions": [{"case_id": o.case_id, "minutes_past": o.minutes_past, "how": o.how}
                                                  for o in figures.over_detentions],
                              "ice_notices": figures.ice_notice_totals,
                              "services_per_officer": figures.services_per_officer,
                              "failed_notifications": len(figures.failed_notices)}, indent=2) + "\n")
        return 0
    out.write(f"report for {figures.period.label} written to {files.folder}\n")
    out.write(f"  detainers received: {sum(figures.detainers_by_form.values())}; "
              f"over-detentions: {len(figures.over_detentions)}; failed notifications: {len(figures.failed_notices)}\n")
    out.write(f"  {files.markdown.name}, {len(files.csvs)} CSV files, {len(files.charts)} charts\n")
    return 0


def cmd_roster_watch(core: Core, args: argparse.Namespace, out: TextIO) -> int:
    if args.within < 0:
        sys.stderr.write("custody: --within: must be 0 or more days\n")
        return 2
    if args.send:
        found, queued = send_roster_watch(core, args.within)
    else:
        with core.uow(read_only=True) as uow:
            roster = uow.roster.current()
        found, queued = watch(roster, core.policy, core.clock.now().astimezone(core.policy.timezone).date(), args.within), 0
    out.write(found.text() + "\n")
    if args.send:
        out.write(f"queued for supervisors: {queued} notification(s)" + ("" if queued or not found.anything_to_report
                                                                         else " (already sent today)") + "\n")
    return 1 if any(found.uncovered.values()) else 0


def add_parsers(sub, roster) -> None:
    p = sub.add_parser("report", help="the period report: Markdown, CSV and PNG charts in a folder")
    p.add_argument("--from", dest="from_", required=True, metavar="DATE", help="first local day (YYYY-MM-DD)")
    p.add_argument("--to", required=True, metavar="DATE", help="last local day, included")
    p.add_argument("--out", help="folder to write (default: reports/FROM_TO in the data folder)")
    p.add_argument("--json", action="store_true", help="print the figures and the files as JSON")
    p.set_defaults(handler=cmd_report)

    p = roster.add_parser("watch", help="certifications expiring soon and days without a certified officer")
    p.add_argument("--within", type=int, default=30, metavar="DAYS", help="how far ahead to look (default 30)")
    p.add_argument("--send", action="store_true", help="also queue it for the supervisors group (once a day)")
    p.set_defaults(handler=cmd_roster_watch)
