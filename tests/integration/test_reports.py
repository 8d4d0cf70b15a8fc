"""Reports against a generated jail whose answers are known in advance."""
from __future__ import annotations

import csv
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import matplotlib.image
import pytest

from custody.adapters import charts
from custody.adapters.charts import draw_all
from custody.service.backstop import sweep
from custody.service.core import Core, Sender
from custody.service.intake import ingest
from custody.service.reporting.dispatch import make_report, previous_period, publish_periodic_report, send_roster_watch
from custody.service.reporting.figures import Period, ReportPeriodError
from custody.service.roster import load_roster
from custody.store import schema as t
from custody.store.db import make_engine, migrate
from custody.store.unit_of_work import SqlUnitOfWork
from models.clock import FixedClock
from models.durations import format_duration
from tests.builders import detainer_event, lift_event, policy, release_event, released_event, service_event, transfer_event, utc
from tests.databases import database_url
from tests.integration.cli import custody, custody_env
from tests.integration.helpers import rows
from tests.report_dataset import BADGES, BOOKINGS, MIX, ROSTER_RENEWED, UNCOVERED_DAYS, plan, run

NY = ZoneInfo("America/New_York")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def jail(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jail")
    engine = make_engine(database_url(folder))  # SQLite, or PostgreSQL on .ci/run's second pass
    migrate(engine)
    core = Core(engine, policy(), FixedClock(utc(2015, 6, 1)))
    planned = plan()
    run(core, planned)
    yield core, planned, folder
    engine.dispose()


def bounds(first: date, last: date) -> tuple[datetime, datetime]:
    return (datetime.combine(first, time(0), NY).astimezone(timezone.utc),
            datetime.combine(last + timedelta(days=1), time(0), NY).astimezone(timezone.utc))


def expected(planned, first: date, last: date) -> dict:
    """The report's figures, derived from the plan with the report's stated counting rules."""
    start, end = bounds(first, last)
    inside = lambda at: at is not None and start <= at < end
    cases = [c for c in planned.cases if c.detainer_at < end]
    ended = [c for c in cases if c.ended_at is not None and inside(c.ended_at)]
    outcomes = Counter(c.outcome for c in ended)
    outcomes["still_open"] = sum(1 for c in cases if c.ended_at is None or c.ended_at >= end)
    first_seen: dict[str, datetime] = {}
    for when, _, step in planned.steps:
        if isinstance(step, dict):
            booking = step["booking_number"]
            first_seen[booking] = min(when, first_seen.get(booking, when))
    return {
        "forms": Counter(c.form_group for c in planned.cases if inside(c.detainer_at)),
        "outcomes": outcomes,
        "hours_held": sorted(round(c.hours_held, 3) for c in ended if c.hours_held is not None),
        "pickup": sorted(round(c.pickup_delay, 3) for c in ended if c.pickup_delay is not None),
        "services": Counter(c.badge for c in planned.cases if c.badge and inside(c.served_at)),
        "release_notices": sum(1 for c in planned.cases if inside(c.t0)),
        "release_notices_acked": sum(1 for c in planned.cases if inside(c.t0) and c.release_notice_acked),
        "uncovered": [d for d in UNCOVERED_DAYS if first <= d <= last],
        "bookings": sum(1 for at in first_seen.values() if inside(at)),
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_generated_jail_has_the_planned_shape(jail):
    core, planned, _ = jail
    assert len(planned.cases) == 205 and len(planned.booking_times) == BOOKINGS == 373
    assert len(rows(core.engine, t.bookings)) == 373
    assert len(rows(core.engine, t.detainers)) == 205


@pytest.mark.parametrize("first,last", [(date(2016, 1, 1), date(2025, 12, 31)), (date(2019, 1, 1), date(2019, 12, 31)),
                                        (date(2025, 12, 1), date(2025, 12, 31))])
def test_every_figure_and_table_matches_the_plan(jail, first, last, tmp_path):
    core, planned, _ = jail
    want = expected(planned, first, last)
    figures, files = make_report(core, first, last, tmp_path / "report", draw_all)

    assert figures.bookings_seen == want["bookings"]
    assert figures.detainers_by_form == {k: want["forms"].get(k, 0) for k in figures.detainers_by_form}
    assert figures.outcomes == {k: want["outcomes"].get(k, 0) for k in figures.outcomes}
    assert sorted(round(h, 3) for _, h in figures.hours_held) == want["hours_held"]
    assert sorted(round(h, 3) for _, h in figures.pickup_delay_hours) == want["pickup"]
    assert figures.services_per_officer == dict(sorted(want["services"].items()))
    assert figures.over_detentions == []
    notices = figures.ice_notices.get("release-notice", {"total": 0, "acknowledged": 0})
    assert (notices["total"], notices["acknowledged"]) == (want["release_notices"], want["release_notices_acked"])
    ice_rows = [r for r in rows(core.engine, t.outbox)
                if r["recipient_group"] == "ice" and figures.period.contains(r["created_at"])]
    assert figures.ice_notice_totals["total"] == len(ice_rows)
    assert figures.roster_days_without_officer == want["uncovered"]

    # the CSV files say the same as the figures
    outcomes = {r["outcome"]: int(r["cases"]) for r in read_csv(files.folder / "outcomes.csv")}
    assert sum(outcomes.values()) == sum(want["outcomes"].values())
    assert outcomes["still open"] == want["outcomes"]["still_open"]
    held = sorted(round(float(r["hours_held"]), 3) for r in read_csv(files.folder / "hours-held.csv"))
    assert held == want["hours_held"]
    assert {r["badge"]: int(r["services"]) for r in read_csv(files.folder / "services-per-officer.csv")} == dict(want["services"])
    assert [r["date"] for r in read_csv(files.folder / "days-without-certified-officer.csv")] == [d.isoformat() for d in want["uncovered"]]
    assert read_csv(files.folder / "over-detentions.csv") == []
    text = files.markdown.read_text()
    assert "**Over-detentions: 0**" in text and f"| detainers received | {sum(want['forms'].values())} |" in text


def test_the_decade_in_round_numbers(jail, tmp_path):
    """The seed's own story: 205 detainers on 373 bookings, ten officers serving."""
    core, _, _ = jail
    figures, _ = make_report(core, date(2016, 1, 1), date(2025, 12, 31), tmp_path / "r", draw_all)
    assert sum(figures.detainers_by_form.values()) == 205 and figures.bookings_seen == 373
    assert figures.detainers_by_form == {"I-247A with warrant": 182, "I-247A without warrant": 8, "I-247G": 12, "legacy": 3}
    assert figures.outcomes == {"picked_up": 70, "picked_up_late": 0, "released_at_limit": 60, "lifted": 15,
                                "no_authority": 30, "transferred_elsewhere": 10, "still_open": 20}
    assert sorted(figures.services_per_officer) == BADGES and sum(figures.services_per_officer.values()) == 135
    assert max(h for _, h in figures.hours_held) < 48
    assert figures.ice_notices["picked-up"]["total"] == MIX["picked_up"]
    assert figures.ice_notices["transferred-out"]["total"] == MIX["transferred_elsewhere"]


def test_every_chart_is_a_png_and_the_time_charts_draw_the_legal_limit(jail, tmp_path):
    core, _, _ = jail
    figures, files = make_report(core, date(2016, 1, 1), date(2025, 12, 31), tmp_path / "r", draw_all)
    assert [p.name for p in files.charts] == list(charts.CHARTS)
    for path in files.charts:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
        height, width, _ = matplotlib.image.imread(path).shape
        assert height > 200 and width > 400
    for name in ("hours-held.png", "pickup-delay.png"):
        drawn = charts.CHARTS[name](figures, tmp_path / name)
        [ax] = drawn.axes
        limit_lines = [line for line in ax.lines if list(line.get_xdata()) == [48, 48]]
        assert limit_lines and limit_lines[0].get_color() == charts.LIMIT_COLOR
        assert "legal limit 48 hours" in [t.get_text() for t in ax.get_legend().get_texts()]
        # and the line is really on the picture: a column of the limit's red
        pixels = matplotlib.image.imread(tmp_path / name)[:, :, :3]
        red = (pixels[:, :, 0] > 0.75) & (pixels[:, :, 1] < 0.3) & (pixels[:, :, 2] < 0.3)
        assert red.sum(axis=0).max() > 100


def test_aggregate_reports_carry_no_names_dates_of_birth_or_a_numbers(jail, tmp_path):
    core, _, _ = jail
    _, files = make_report(core, date(2016, 1, 1), date(2025, 12, 31), tmp_path / "r", draw_all)
    text = files.markdown.read_text() + "".join(p.read_text() for p in files.csvs)
    assert "Test Person" not in text and "1990-01-02" not in text
    assert "A2000" not in text  # the generated A-numbers are A2000000NN


def over_detained(core, clock, booking: str, *, minutes_late: int, how: str) -> None:
    """A held case whose person leaves `minutes_late` after the deadline."""
    t0 = clock.now()
    for event in (detainer_event(f"{booking}d", booking, t0 - timedelta(days=2), a_number=f"A9{booking[-1]}0000000",
                                 event_number=booking),
                  release_event(f"{booking}r", booking, t0), service_event(f"{booking}s", booking, t0 + timedelta(minutes=5))):
        assert ingest(core, event, Sender("test")).result == "accepted"
    clock.set(t0 + timedelta(hours=46))
    sweep(core)  # the release is ordered on time...
    left = t0 + timedelta(hours=48, minutes=minutes_late)
    clock.set(left)
    sweep(core)
    # ...but the person leaves late (the desk sat on the order, or ICE came late)
    event = (released_event(f"{booking}o", booking, left) if how == "released"
             else transfer_event(f"{booking}x", booking, left, agency="ICE"))
    assert ingest(core, event, Sender("test")).result == "accepted"
    clock.set(left + timedelta(hours=1))


def test_a_deliberate_over_detention_appears_in_the_report(core, clock, tmp_path):
    over_detained(core, clock, "OD1", minutes_late=37, how="released")
    over_detained(core, clock, "OD2", minutes_late=5, how="ICE")
    today = clock.now().astimezone(NY).date()
    figures, files = make_report(core, today - timedelta(days=5), today, tmp_path / "r", draw_all)
    assert [(o.booking_number, o.minutes_past) for o in figures.over_detentions] == [("OD1", 37), ("OD2", 5)]
    assert figures.outcomes["released_at_limit"] == 1 and figures.outcomes["picked_up_late"] == 1
    text = files.markdown.read_text()
    assert "**Over-detentions: 2**" in text and "| 37 |" in text
    listed = read_csv(files.folder / "over-detentions.csv")
    assert [(r["booking"], r["minutes_past_due"]) for r in listed] == [("OD1", "37"), ("OD2", "5")]


# Each kind of case, its facts after T0 (minutes), when the person left (minutes after T0), and the
# minutes past due counted by hand under the test policy (wso, limit 48 h, grace 1 h, the desk's 30 min).
KINDS = {
    # held on a served warrant: due at the deadline, T0 + 48 h; left at 48 h 37 min
    "hold": ([("served", 5)], 48 * 60 + 37, 37, "the hold deadline"),
    # no valid service: due at the window's close plus the desk's 30 min (T0 + 90 min); left at 72 h
    "no service": ([], 72 * 60, 72 * 60 - 90, "no hold: the service window's close plus the desk's 30m"),
    # an I-247G asks only for notification: due at T0 plus the desk's 30 min; left at 2 h
    "notify-only": ([], 120, 90, "no authority to hold: the release authorisation plus the desk's 30m"),
    # identity not verified: no authority either; left at 1 h
    "unverified": ([], 60, 30, "no authority to hold: the release authorisation plus the desk's 30m"),
    # held, then lifted at 5 h: due at the lift plus 30 min; left at 10 h
    "lifted during the hold": ([("served", 5), ("lifted", 300)], 600, 270, "the detainer's lift plus the desk's 30m"),
    # lifted at 20 min, while the officer's window was open: due at 50 min; left at 3 h
    "lifted during the grace": ([("lifted", 20)], 180, 130, "the detainer's lift plus the desk's 30m"),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_over_detention_counts_from_when_release_was_due_for_every_kind_of_case(make_core, clock, tmp_path, kind):
    facts, left_after, minutes, because = KINDS[kind]
    core = make_core()
    t0 = clock.now()
    detainer = detainer_event("d", "K1", t0 - timedelta(days=1), verified=kind != "unverified",
                              **({"form": "I-247G", "box1": False, "warrant": None} if kind == "notify-only" else {}))
    events = [detainer, release_event("r", "K1", t0)]
    for what, after in facts:
        at = t0 + timedelta(minutes=after)
        events.append(service_event("s", "K1", at) if what == "served" else lift_event("l", "K1", at))
    for event in sorted(events, key=lambda e: e["occurred_at"]):
        clock.set(max(clock.now(), datetime.fromisoformat(event["occurred_at"])))
        assert ingest(core, event, Sender("test")).result == "accepted", event
        sweep(core)
    left = t0 + timedelta(minutes=left_after)
    clock.set(left - timedelta(minutes=1))
    sweep(core)
    clock.set(left)
    assert ingest(core, released_event("o", "K1", left), Sender("test")).result == "accepted"
    clock.set(left + timedelta(hours=1))

    today = clock.now().astimezone(NY).date()
    figures, files = make_report(core, today - timedelta(days=5), today, tmp_path / "r", draw_all)
    [over] = figures.over_detentions
    assert (over.minutes_past, over.due_because) == (minutes, because)
    assert over.release_due_at == left - timedelta(minutes=minutes)
    [row] = read_csv(files.folder / "over-detentions.csv")
    assert (row["minutes_past_due"], row["due_because"]) == (str(minutes), because)
    # The case record says the same, and so does the release in its history.
    with SqlUnitOfWork(core.engine, read_only=True) as uow:
        case = uow.cases.get(over.case_id)
        history = [row["reason"] for row in uow.audit.for_case(over.case_id)]
    assert case.minutes_past_due(core.policy, clock.now()) == minutes
    assert [r for r in history if "AFTER release was due" in r] == [
        next(r for r in history if r.startswith(("released by", "left the jail")))]
    assert f"{format_duration(timedelta(minutes=minutes))} AFTER release was due ({because}" in history[-1]


def test_a_pickup_after_release_was_due_is_late_whether_or_not_a_hold_was_made(core, clock, tmp_path):
    t0 = clock.now()
    late_service = t0 + timedelta(hours=2)  # after the 1 h grace: no hold
    for event in sorted((detainer_event("d1", "P1", t0 - timedelta(days=1)), release_event("r1", "P1", t0),
                  detainer_event("d2", "P2", t0 - timedelta(days=1), a_number="A000000002"), release_event("r2", "P2", t0),
                  service_event("s2", "P2", t0 + timedelta(minutes=10)),
                  detainer_event("d3", "P3", t0 - timedelta(days=1), a_number="A000000003"),
                  service_event("s3", "P3", t0 - timedelta(hours=5)), release_event("r3", "P3", t0)),
                        key=lambda e: e["occurred_at"]):
        clock.set(max(clock.now(), datetime.fromisoformat(event["occurred_at"])))
        assert ingest(core, event, Sender("test")).result == "accepted"
    clock.set(late_service)
    sweep(core)
    assert ingest(core, service_event("s1", "P1", late_service), Sender("test")).result == "accepted"
    clock.set(t0 + timedelta(hours=3))
    for booking in ("P1", "P2", "P3"):  # ICE comes for each, three hours after T0
        assert ingest(core, transfer_event(f"x-{booking}", booking, clock.now()), Sender("test")).result == "accepted"
    clock.set(t0 + timedelta(hours=4))
    today = clock.now().astimezone(NY).date()
    figures, _ = make_report(core, today - timedelta(days=2), today, tmp_path / "r", draw_all)
    # P1: no hold, due at the window's close plus the desk's 30 minutes, picked up 90 minutes after that;
    # P2: held on a timely service, picked up well within its deadline; P3 the same, served before T0.
    assert (figures.outcomes["picked_up_late"], figures.outcomes["picked_up"]) == (1, 2)
    [over] = figures.over_detentions
    assert over.minutes_past == 90
    # the pickup delay is timed from the hold's start (P2's service, P3's T0), P1 made none
    assert sorted(round(hours, 3) for _, hours in figures.pickup_delay_hours) == [round(170 / 60, 3), 3.0]


def test_a_release_never_confirmed_counts_as_an_over_detention_until_it_is(core, clock, tmp_path):
    t0 = clock.now()
    for event in (detainer_event("d1", "B1", t0 - timedelta(days=1)), release_event("r1", "B1", t0),
                  service_event("s1", "B1", t0 + timedelta(minutes=5))):
        ingest(core, event, Sender("test"))
    clock.set(t0 + timedelta(hours=50))
    sweep(core)  # ordered at once (late sweep); nobody confirms the release
    today = clock.now().astimezone(NY).date()
    figures, _ = make_report(core, today - timedelta(days=3), today, tmp_path / "r", draw_all)
    [over] = figures.over_detentions
    assert over.left_at is None and "still in custody past the time release was due" in over.how
    assert over.minutes_past == 120  # now (T0 + 50 h) minus the deadline, not the period's end (still to come)
    figures, _ = make_report(core, today - timedelta(days=3), today - timedelta(days=1), tmp_path / "r2", draw_all)
    assert figures.over_detentions == []  # the deadline fell after that period: nothing to judge there


def test_a_deadline_still_to_come_is_no_over_detention(core, clock, tmp_path):
    t0 = clock.now()
    for event in (detainer_event("d1", "B1", t0 - timedelta(days=1)), release_event("r1", "B1", t0),
                  service_event("s1", "B1", t0 + timedelta(minutes=5))):
        ingest(core, event, Sender("test"))
    clock.set(t0 + timedelta(hours=1))
    today = clock.now().astimezone(NY).date()
    figures, _ = make_report(core, today, today + timedelta(days=3), tmp_path / "r", draw_all)
    assert figures.over_detentions == [] and figures.outcomes["still_open"] == 1


def test_failed_notifications_and_their_escalation_are_listed(core, clock, tmp_path):
    from custody.adapters.apprise_relay import Recipients, Relay
    path = tmp_path / "apprise.yml"
    # the release desk's only channel is a port nobody listens on; the others deliver to a real receiver
    from tests.integration.receivers import JsonReceiver
    web = JsonReceiver()
    try:
        path.write_text(f"version: 1\nurls:\n  - json://127.0.0.1:1/desk:\n      - tag: release-desk\n"
                        + "".join(f"  - json://127.0.0.1:{web.port}/{g}:\n      - tag: {g}\n"
                                  for g in ("ice", "supervisors", "sheriff", "wso", "records")))
        t0 = clock.now()
        for event in (detainer_event("d1", "B1", t0 - timedelta(days=1)), release_event("r1", "B1", t0),
                      service_event("s1", "B1", t0 + timedelta(minutes=5))):
            ingest(core, event, Sender("test"))
        relay = Relay(core, Recipients(path, respect_rate_limits=False), "r1")
        for _ in range(10):
            relay.pass_once()
            clock.advance(timedelta(minutes=11))
    finally:
        web.close()
    today = clock.now().astimezone(NY).date()
    figures, files = make_report(core, today - timedelta(days=3), today, tmp_path / "r", draw_all)
    escalated = {r["idempotency_key"].rsplit(":escalated:", 1)[0] for r in rows(core.engine, t.outbox) if r["kind"] == "escalation"}
    failed = [r for r in rows(core.engine, t.outbox) if r["idempotency_key"] in escalated]
    assert failed and [f.outbox_id for f in figures.failed_notices] == [r["id"] for r in failed]
    assert all(f.state == "pending" for f in figures.failed_notices)  # still retried
    assert all(f.group == "release-desk" and f.escalated_to == ("sheriff", "supervisors") for f in figures.failed_notices)
    assert all(f.escalation_states == ("sent", "sent") for f in figures.failed_notices)
    listed = read_csv(files.folder / "failed-notifications.csv")
    assert [r["escalated_to"] for r in listed] == ["sheriff supervisors"] * len(failed)
    assert {r["delivered_in_the_end"] for r in listed} == {"no (still retried)"}


def test_bad_periods_are_refused_naming_the_field(core, tmp_path):
    with pytest.raises(ReportPeriodError) as caught:
        make_report(core, date(2026, 2, 1), date(2026, 1, 1), tmp_path / "r", draw_all)
    assert caught.value.field == "to"
    assert not (tmp_path / "r").exists()


def test_period_boundaries_are_local_midnights_across_dst():
    period = Period.of_days(date(2026, 3, 1), date(2026, 3, 31), policy())
    assert period.start == utc(2026, 3, 1, 5) and period.end == utc(2026, 4, 1, 4)


@pytest.mark.parametrize("today,kind,want", [
    (date(2026, 12, 1), "monthly", (date(2026, 11, 1), date(2026, 11, 30), "2026-11")),
    (date(2026, 1, 1), "monthly", (date(2025, 12, 1), date(2025, 12, 31), "2025-12")),
    (date(2026, 1, 1), "annual", (date(2025, 1, 1), date(2025, 12, 31), "2025")),
])
def test_the_scheduled_reports_cover_the_previous_whole_month_or_year(today, kind, want):
    assert previous_period(kind, today) == want


def test_the_monthly_report_is_queued_once_to_the_sheriff_and_supervisors(core, clock, tmp_path):
    over_detained(core, clock, "OD1", minutes_late=12, how="released")
    clock.set(datetime.combine(clock.now().astimezone(NY).date().replace(day=1) + timedelta(days=32), time(6), NY)
              .replace(day=1).astimezone(timezone.utc))
    made = publish_periodic_report(core, "monthly", tmp_path / "reports", draw_all)
    again = publish_periodic_report(core, "monthly", tmp_path / "reports", draw_all)
    assert made.queued == 2 and again.queued == 0
    sent = [r for r in rows(core.engine, t.outbox) if r["kind"] == "monthly-report"]
    assert sorted(r["recipient_group"] for r in sent) == ["sheriff", "supervisors"]
    assert all(r["urgency"] == "urgent" and "1 over-detention" in r["subject"] for r in sent)
    assert "**Over-detentions: 1**" in sent[0]["body"] and "A910000000" not in sent[0]["body"]


def test_roster_watch_names_expiring_certifications_and_uncovered_days(make_core, clock, tmp_path):
    clock.set(utc(2026, 11, 29, 14))
    core = make_core(roster=None)
    load_roster(core, ROSTER_RENEWED, source="t", actor="t")
    found, queued = send_roster_watch(core, 30)
    assert [(e.badge, e.days_left) for e in found.expiring] == [("W-03", 21)]
    assert found.uncovered == {"RCJ": []} and queued == 1
    assert send_roster_watch(core, 30)[1] == 0  # once a day
    [row] = [r for r in rows(core.engine, t.outbox) if r["kind"] == "roster-watch"]
    assert row["recipient_group"] == "supervisors" and "W-03" in row["body"] and "2026-12-20" in row["body"]

    short = "badge,name,certified_on,expires_on,facility\nW-01,Officer A,2020-01-01,2026-12-05,RCJ\nW-02,Officer B,2026-12-09,2030-01-01,RCJ\n"
    load_roster(core, short, source="t", actor="t")
    clock.advance(timedelta(days=1))
    found, queued = send_roster_watch(core, 30)
    assert found.uncovered["RCJ"] == [date(2026, 12, 6), date(2026, 12, 7), date(2026, 12, 8)]
    assert queued == 1 and "2026-12-06..2026-12-08" in found.text()


def test_custody_report_command_writes_the_folder_and_refuses_bad_dates(tmp_path):
    env = custody_env(tmp_path)
    done = custody(env, "report", "--from", "2026-01-01", "--to", "2026-01-31", "--out", str(tmp_path / "jan"))
    assert "report for 2026-01-01 to 2026-01-31" in done.stdout
    assert (tmp_path / "jan" / "report.md").exists() and (tmp_path / "jan" / "hours-held.png").read_bytes().startswith(PNG_SIGNATURE)
    bad = custody(env, "report", "--from", "2026-01-01", "--to", "January", check=False)
    assert bad.returncode == 2 and "to: 'January' is not a date" in bad.stderr
    watch = custody(env, "roster", "watch", check=False)
    assert "Days without a certified WSO at" in watch.stdout and watch.returncode == 1  # no roster loaded at all
