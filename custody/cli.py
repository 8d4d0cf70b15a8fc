"""The `custody` command."""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable, TextIO

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from custody.config import ConfigError, Settings
from custody.encoding import TWICE, json_lines, named_twice, parse_json
from custody.service.backstop import refresh_due_instants, sweep
from custody.service.core import Core, Sender
from custody.service.intake import IngestResult, ingest_many
from custody.service.roster import load_roster
from custody.service.views import case_detail, find_case, format_past_due, open_case_details, open_cases
from custody.service.views import format_left as _left
from custody.service.views import format_local as _local
from custody.store.db import DatabaseBusy, DatabaseError
from custody.wiring import build_core, intake_core
from models.clock import iso_z
from models.policy import PolicyError
from models.roster import RosterError


def _operator() -> Sender:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return Sender(f"cli:{user}")


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"custody: {path}: {exc.strerror}")
    except UnicodeDecodeError:
        raise SystemExit(f"custody: {path}: not UTF-8 text")


def _table(rows: list[list[str]], header: list[str], out: TextIO) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        out.write("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")


# --- commands --------------------------------------------------------------------------

def _read_bytes(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SystemExit(f"custody: {path}: {exc.strerror}")


def cmd_ingest(core: Core, args: argparse.Namespace, out: TextIO) -> int:
    intake = intake_core(core, args.settings)
    try:
        return _ingest_file(intake, args, out)
    finally:
        if intake is not core:
            intake.engine.dispose()


INGEST_BATCH = 100  # events per transaction, in whole bookings: a backstop's release order waits for no more


def _ingest_file(core: Core, args: argparse.Namespace, out: TextIO) -> int:
    """The file's events are facts that arrive together: the events of one
    booking go to the database in one batch, applied in the order they happened
    (custody/service/intake.ingest_many), so their outcome does not depend on the order
    of the lines. The results are printed in the order of the lines."""
    sender = _operator()
    results: dict[int, IngestResult] = {}
    parsed: list[tuple[int, Any]] = []
    for number, line in json_lines(_read_bytes(args.file)):
        if line is not None and not line.strip(" \t\r"):  # JSON's own whitespace; anything else is reported
            continue
        if line is None:
            results[number] = IngestResult(None, "rejected", "not UTF-8 text")
            continue
        try:
            raw = parse_json(line)
        except (ValueError, RecursionError):
            results[number] = IngestResult(None, "rejected", "not valid JSON")
            continue
        twice = named_twice(raw)
        if twice is None:
            parsed.append((number, raw))
        else:
            results[number] = IngestResult(None, "rejected", f"{twice}: {TWICE}")
    for batch in _booking_batches(parsed, INGEST_BATCH):
        try:
            done = ingest_many(core, [raw for _, raw in batch], sender)
        except (DatabaseBusy, SQLAlchemyError) as exc:  # nothing of the batch stored: running the same file again is safe
            done = [IngestResult(None, "rejected", f"database: {str(exc).splitlines()[0][:300]}; run the file again")
                    for _ in batch]
        results.update((number, result) for (number, _), result in zip(batch, done))
    touched = [r.case_id for r in results.values() if r.case_id and r.result != "duplicate"]
    for number in sorted(results):
        result = results[number]
        out.write((json.dumps({"line": number, **result.as_dict()}) if args.json else result.line(f"line {number}")) + "\n")
    _tell_prefect(core, touched)
    return 1 if any(r.result == "rejected" for r in results.values()) else 0


def _booking_batches(parsed: list[tuple[int, Any]], size: int) -> Iterable[list[tuple[int, Any]]]:
    """Lines grouped into batches of about `size`, never splitting a booking's events."""
    by_booking: dict[Any, list[tuple[int, Any]]] = {}
    for number, raw in parsed:
        booking = raw.get("booking_number") if isinstance(raw, dict) else None
        key = booking if isinstance(booking, str) else ("line", number)
        by_booking.setdefault(key, []).append((number, raw))
    batch: list[tuple[int, Any]] = []
    for lines in by_booking.values():
        if batch and len(batch) + len(lines) > size:
            yield batch
            batch = []
        batch += lines
    if batch:
        yield batch


def _tell_prefect(core: Core, case_ids: list[str]) -> None:
    """If the local Prefect is up, bring the touched case runs in line now;
    otherwise the reconciler does it when Prefect is back. Nothing waits on it."""
    if not case_ids or os.environ.get("CUSTODY_PREFECT") == "off":
        return
    from custody.adapters.prefect.runs import prefect_reachable
    if not prefect_reachable(timeout=1.0):
        return
    from custody.adapters.prefect.sync import sync_case
    for case_id in dict.fromkeys(case_ids):
        sync_case(core, case_id)


def _no_case(core: Core, args: argparse.Namespace) -> str:
    where = core.engine.url.render_as_string(hide_password=True)
    hint = ("; the demo's cases are in its own folder: custody --demo case ..."
            if args.id.upper().startswith("DEMO-") and not args.demo_home else "")
    return f"custody: no case with id or booking number {args.id!r} in {where}{hint}\n"


def cmd_case_show(core: Core, args: argparse.Namespace, out: TextIO) -> int:
    with core.uow(read_only=True) as uow:
        case = find_case(uow, args.id)
        if case is None:
            sys.stderr.write(_no_case(core, args))
            return 1
        view = case_detail(uow, case, core.policy, core.clock.now())
    if args.json:
        out.write(json.dumps(view, indent=2) + "\n")
        return 0
    policy = core.policy
    out.write(f"Case {view['case_id']}  booking {view['booking_number']}  facility {view['facility']}\n")
    out.write(f"Status      {view['status']}" + (f" ({view['status_reason']})" if view["status_reason"] else "") + "\n")
    out.write(f"T0          {_local(view['t0'], policy)}  [{view['t0'] or '-'}]\n")
    out.write(f"Deadline    {_local(view['deadline_at'], policy)}  [{view['deadline_at'] or '-'}]  left {_left(view['seconds_left'])}\n")
    out.write(f"Hold        {'authorised' if view['hold_authorized'] else 'not authorised'}" + (f": {view['no_hold_reason']}" if view["no_hold_reason"] else "") + "\n")
    out.write(f"Served      {_local(view['served_at'], policy)} by {view['served_by'] or '-'}\n")
    for warning in view["warnings"]:
        out.write(f"WARNING     {warning}\n")
    out.write("\nTimeline\n")
    rows = []
    for item in view["timeline"]:
        if item["kind"] == "event":
            rows.append([_local(item["at"], policy), "event", item["type"], item["sender"], item["outcome"]])
        else:
            change = item["status_after"] if item["status_before"] == item["status_after"] else f"{item['status_before'] or 'new'} -> {item['status_after']}"
            rows.append([_local(item["at"], policy), item["action"], change or "", item["actor"], item["reason"]])
    _table(rows, ["when", "what", "status", "who", "detail"], out)
    return 0


def cmd_case_record(core: Core, args: argparse.Namespace, out: TextIO) -> int:
    """The complete, attributed history of one case, fit to hand to counsel or a court."""
    with core.uow(read_only=True) as uow:
        case = find_case(uow, args.id)
        if case is None:
            sys.stderr.write(_no_case(core, args))
            return 1
        view = case_detail(uow, case, core.policy, core.clock.now())
        detainers = uow.detainers.for_case(case.case_id)
        notices = uow.outbox.for_case(case.case_id)
        broken = uow.audit.broken_links(case.case_id)
    policy = core.policy
    when = lambda text: f"{text} | {_local(text, policy)}" if text else "-"
    lines = [
        f"CASE RECORD {case.case_id}",
        "CONTAINS PERSONAL DATA (name, date of birth, A-number): for counsel, the court or authorised staff only.",
        f"Printed {iso_z(core.clock.now())} by {_operator().name}; times are UTC | {policy.timezone.key}.",
        f"Audit trail for this case: {'VERIFIED (every hash link intact)' if not broken else 'BROKEN: ' + broken[0]['problem'] + ' at entry ' + str(broken[0]['seq'])}",
        "",
        f"Booking {case.booking_number}, facility {case.facility}. Status: {case.status}" + (f" ({case.status_reason})" if case.status_reason else ""),
        f"T0: {when(view['t0'])} (anchor rule: {view['anchor_rule'] or '-'})",
        f"Deadline: {when(view['deadline_at'])}",
        f"Release due: {when(view['release_due_at'])}" + (f" ({view['release_due_because']})" if view["release_due_because"] else "")
        + (f"; held {view['minutes_past_due']} minute(s) past it" if view["minutes_past_due"] else ""),
        f"Hold authorised: {'yes' if case.hold_authorized else 'no'}" + (f" ({case.no_hold_reason})" if case.no_hold_reason else ""),
        "",
        "Detainers:",
    ]
    for d in detainers:
        lines.append(f"  {d['form']} ICE event {d['ice_event_number']} from {d['issuing_office']}, issued {when(iso_z(d['issued_at']))}, "
                     f"received {when(iso_z(d['received_at']))}; subject {d['subject_name']}, born {d['subject_dob']}, "
                     f"{d['a_number']}; identity verified: {'yes' if d['identity_verified'] else 'no'}; "
                     f"warrant: {d['warrant_form'] or 'none'} {d['warrant_number'] or ''}".rstrip())
    lines += ["", "History (events as they occurred, and every action the system or a person took):"]
    for item in view["timeline"]:
        if item["kind"] == "event":
            lines.append(f"  {when(item['at'])}  EVENT {item['type']} ({item['event_id']}) from {item['sender']}, "
                         f"received {item['received_at']}: {item['outcome']}")
        else:
            change = "" if item["status_before"] == item["status_after"] else f" [{item['status_before'] or 'new'} -> {item['status_after']}]"
            lines.append(f"  {when(item['at'])}  {item['action']}{change} by {item['actor']}: {item['reason']}")
    lines += ["", "Notifications:"]
    for n in notices:
        ack = f", acknowledged {iso_z(n['acknowledged_at'])} by {n['acknowledged_by']}" if n["acknowledged_at"] else ""
        lines.append(f"  {when(iso_z(n['created_at']))}  {n['kind']} to {n['recipient_group']} ({n['urgency']}): {n['state']}"
                     f"{', sent ' + iso_z(n['sent_at']) if n['sent_at'] else ''}, {n['attempts']} failed attempt(s){ack}")
    out.write("\n".join(lines) + "\n")
    return 0 if not broken else 1


def cmd_cases(core: Core, args: argparse.Namespace, out: TextIO) -> int:
    with core.uow(read_only=True) as uow:
        if args.json:  # the same object for each case as `custody case show --json`
            out.write(json.dumps(open_case_details(uow, core.policy, core.clock.now()), indent=2) + "\n")
            return 0
        views = open_cases(uow, core.policy, core.clock.now())
    rows = [[v["case_id"], v["booking_number"], v["status"], _local(v["t0"], core.policy),
             _local(v["deadline_at"], core.policy), _left(v["seconds_left"]), format_past_due(v["minutes_past_due"]),
             v["served_by"] or "-"] for v in views]
    _table(rows, ["case", "booking", "status", "T0", "deadline", "left", "past due", "served by"], out)
    out.write(f"{len(views)} open case(s)\n")
    return 0


def cmd_roster_load(core: Core, args: argparse.Namespace, out: TextIO) -> int:
    text = _read(args.file)
    try:
        changes = load_roster(core, text, source=args.file, actor=_operator().name)
    except RosterError as exc:
        sys.stderr.write(f"custody: {exc}; nothing was changed\n")
        return 2
    out.write("roster loaded: " + ", ".join(f"{k} {len(v)}" for k, v in changes.items()) + "\n")
    return 0


def cmd_roster_show(core: Core, args: argparse.Namespace, out: TextIO) -> int:
    with core.uow(read_only=True) as uow:
        entries = uow.roster.current()
    today = core.clock.now().astimezone(core.policy.timezone).date()
    views = [{"badge": e.badge, "name": e.name, "certified_on": e.certified_on.isoformat(),
              "expires_on": e.expires_on.isoformat(), "facility": e.facility,
              "certified_today": e.certified_on_day(today)} for e in entries]
    if args.json:
        out.write(json.dumps(views, indent=2) + "\n")
    else:
        _table([[v["badge"], v["name"], v["certified_on"], v["expires_on"], v["facility"], "yes" if v["certified_today"] else "NO"]
                for v in views], ["badge", "name", "certified", "expires", "facility", "certified today"], out)
    return 0


def cmd_sweep(core: Core, args: argparse.Namespace, out: TextIO) -> int:
    try:  # instants stored by older code or policy must not hide what is due now
        refresh_due_instants(core)
    except OperationalError as exc:  # the pass itself still runs: it orders what the stored instants show
        sys.stderr.write(f"could not bring the stored due instants up to date ({str(exc).splitlines()[0][:200]}); sweeping anyway\n")
    report = sweep(core, actor=f"sweep:{_operator().name}")
    if args.json:
        out.write(json.dumps(report.as_dict(), indent=2) + "\n")
        return 1 if report.not_advanced else 0
    if report.actions:
        _table([[a.case_id, a.booking_number, a.action, f"{a.status_before} -> {a.status_after}" if a.status_before != a.status_after else a.status_after,
                 _local(a.deadline_at, core.policy), a.reason] for a in report.actions],
               ["case", "booking", "action", "status", "deadline", "why"], out)
    else:
        out.write("nothing due\n")
    out.write(f"examined {report.examined} due case(s) at {iso_z(report.started_at)}; next due {iso_z(report.next_due_at) or 'none'}\n")
    if report.not_advanced:
        out.write(f"NOT ADVANCED (every attempt failed: other writers held the database, or it failed; run again): {', '.join(report.not_advanced)}\n")
        return 1
    return 0


def cmd_notifications(core: Core, args: argparse.Namespace, out: TextIO) -> int:
    with core.uow(read_only=True) as uow:
        recent = uow.outbox.recent(args.limit)
        views = []
        for row in recent:
            attempts = uow.outbox.attempts(row["id"])
            views.append({
                "id": row["id"], "created_at": iso_z(row["created_at"]), "case_id": row["case_id"], "kind": row["kind"],
                "group": row["recipient_group"], "urgency": row["urgency"], "state": row["state"],
                "attempts": row["attempts"], "sent_at": iso_z(row["sent_at"]), "last_error": row["last_error"],
                "dropped_reason": row["dropped_reason"],
                "acknowledged_at": iso_z(row["acknowledged_at"]), "acknowledged_by": row["acknowledged_by"],
                "channels": [{"at": iso_z(a["at"]), "channel": a["channel"], "ok": a["ok"], "error": a["error"]} for a in attempts],
            })
    if args.failed:
        views = [v for v in views if v["state"] == "failed" or v["last_error"]]
    if args.json:
        out.write(json.dumps(views, indent=2) + "\n")
        return 0
    rows = [[_local(v["created_at"], core.policy), v["case_id"] or "-", v["kind"], v["group"], v["urgency"], v["state"],
             str(v["attempts"]), "yes" if v["acknowledged_at"] else "-", (v["dropped_reason"] or v["last_error"] or "")[:60]]
            for v in views]
    _table(rows, ["queued", "case", "notice", "group", "urgency", "state", "tries", "ack", "last error / why dropped"], out)
    return 0


def cmd_notify_test(core: Core, args: argparse.Namespace, out: TextIO) -> int:
    from custody.adapters.apprise_relay import Recipients, Relay

    path = args.settings.apprise_config
    if not path.is_file():
        sys.stderr.write(f"custody: CUSTODY_APPRISE_CONFIG: {path} does not exist (see examples/apprise.yml)\n")
        return 2
    now = core.clock.now()
    with core.uow() as uow:
        uow.outbox.add_alert(key=f"test:{now.isoformat()}", kind="test", groups=(args.tag,), urgency="info",
                             subject="custody: test message", now=now,
                             body=f"A test of the {args.tag} group from custody at {iso_z(now)}. No action needed.")
        row_id = uow.outbox.recent(1)[0]["id"]
        uow.commit()
    Relay(core, Recipients(path), name="notify-test").pass_once(only=[row_id])
    with core.uow(read_only=True) as uow:
        attempts = uow.outbox.attempts(row_id)
        state = uow.outbox.row(row_id)["state"]
    for attempt in attempts:
        out.write(f"{'ok    ' if attempt['ok'] else 'FAILED'} {attempt['channel']}" + (f": {attempt['error']}" if attempt["error"] else "") + "\n")
    out.write(f"test message to {args.tag}: {state if state == 'sent' else 'not delivered (it will be retried by the relay)'}\n")
    return 0 if state == "sent" else 1


def cmd_audit_verify(core: Core, args: argparse.Namespace, out: TextIO) -> int:
    with core.uow(read_only=True) as uow:
        broken = uow.audit.broken_links(args.case)
        entries = uow.audit.count()
    broken.sort(key=lambda b: (b["id"] is None, b["id"] or 0))
    if args.json:
        out.write(json.dumps({"entries": entries, "verified": not broken, "broken": broken}, indent=2) + "\n")
    elif broken:
        first = broken[0]
        row = f" (row {first['id']})" if first["id"] is not None else ""
        out.write(f"BROKEN: chain {first['chain']} at entry {first['seq']}{row}: {first['problem']}\n")
        if len(broken) > 1:
            out.write(f"{len(broken) - 1} more chain(s) broken: {', '.join(b['chain'] for b in broken[1:])}\n")
    else:
        out.write(f"audit trail verified: {entries} entries, every link intact\n")
    return 1 if broken else 0


def cmd_up(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    from custody.up import run_up
    return run_up(settings, host=args.host, port=args.port, out=out, with_prefect=not args.no_prefect, demo=args.demo,
                  read_forms=not args.no_prefect or args.prefect_api_given)


def demo_settings(settings: Settings) -> Settings:
    """The demo lives in its own folder with its own compressed policy, and never
    in the real databases: SQLite files there, or the databases named by
    CUSTODY_DEMO_DATABASE_URL and CUSTODY_DEMO_PREFECT_DATABASE_URL."""
    from custody.demo import POLICY
    home = settings.home / "demo"
    home.mkdir(parents=True, exist_ok=True)
    policy = home / "policy.toml"
    policy.write_text(POLICY)
    return Settings.from_env({**os.environ, "CUSTODY_HOME": str(home), "CUSTODY_POLICY": str(policy),
                              "CUSTODY_DATABASE_URL": os.environ.get("CUSTODY_DEMO_DATABASE_URL")
                              or f"sqlite:///{home / 'custody.db'}",
                              "CUSTODY_PREFECT_DATABASE_URL": os.environ.get("CUSTODY_DEMO_PREFECT_DATABASE_URL", "")})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="custody", description="Detainer cases, the legal hold clock and the deadline backstop.")
    parser.add_argument("--demo", dest="demo_home", action="store_true",
                        help="work on the demo's cases (data/demo, as custody up --demo runs them)")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the system on this machine")
    up.add_argument("--host", help="address to listen on (default CUSTODY_HTTP_HOST or 127.0.0.1)")
    up.add_argument("--port", type=int, help="port of the event endpoint (default CUSTODY_HTTP_PORT or 8470)")
    up.add_argument("--no-prefect", action="store_true", help="only the event endpoint and the backstop (no Prefect server or flows)")
    up.add_argument("--demo", action="store_true", help="a simulated jail with 15-minute holds (10 minutes to serve), in data/demo")
    up.add_argument("--reset", action="store_true", help="with --demo: start the demo clean (its SQLite database, Prefect home and logs emptied)")
    up.set_defaults(handler=None)

    p = sub.add_parser("ingest", help="validate and store events from a JSON Lines file ('-' for stdin)")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="one JSON result per line")
    p.set_defaults(handler=cmd_ingest)

    case = sub.add_parser("case", help="one case").add_subparsers(dest="case_command", required=True)
    p = case.add_parser("show", help="show one case by case id or booking number")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_case_show)

    p = case.add_parser("record", help="the complete attributed history of one case, for counsel or a court")
    p.add_argument("id")
    p.set_defaults(handler=cmd_case_record)

    p = sub.add_parser("cases", help="open cases, soonest deadline first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_cases)

    roster = sub.add_parser("roster", help="the WSO roster").add_subparsers(dest="roster_command", required=True)
    p = roster.add_parser("load", help="replace the roster from CSV (badge,name,certified_on,expires_on,facility)")
    p.add_argument("file")
    p.set_defaults(handler=cmd_roster_load)
    p = roster.add_parser("show", help="the current roster")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_roster_show)

    from custody.report_cli import add_parsers as add_report_parsers
    add_report_parsers(sub, roster)

    p = sub.add_parser("notifications", help="recent notifications: delivered, retrying, failed")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--failed", action="store_true", help="only those with a failure")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_notifications)

    p = sub.add_parser("notify-test", help="send a test message to one recipient group now")
    p.add_argument("tag", help="the group, e.g. ice, release-desk, supervisors")
    p.set_defaults(handler=cmd_notify_test)

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(dest="audit_command", required=True)
    p = audit.add_parser("verify", help="check the hash chain; report the first broken link")
    p.add_argument("--case", help="only this case's chain")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_audit_verify)

    p = sub.add_parser("sweep", help="one pass of the deadline backstop, now")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_sweep)
    return parser


def main(argv: Iterable[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        settings = Settings.from_env()
        # `custody up --no-prefect` beside a Prefect server elsewhere still reads the officers' forms.
        args.prefect_api_given = "PREFECT_API_URL" in os.environ
        if args.demo_home or (args.command == "up" and args.demo):
            settings = demo_settings(settings)
        if args.command == "up" and args.reset:
            if not args.demo:
                raise ConfigError("--reset: only the demo is ever reset (custody up --demo --reset)")
            from custody.demo import reset
            try:
                removed = reset(settings.home, settings.database_url, settings.prefect_database_url)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            out.write("demo reset: " + (", ".join(removed) or "nothing to remove") + "\n")
        settings.apply_prefect_env()
        if args.command == "up":
            return cmd_up(settings, args, out)
        core = build_core(settings)
        args.settings = settings
        try:
            return args.handler(core, args, out)
        finally:
            core.engine.dispose()
    except (PolicyError, ConfigError, DatabaseError) as exc:
        sys.stderr.write(f"custody: {exc}\n")
        return 2
    except BrokenPipeError:  # e.g. `custody case show X | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
