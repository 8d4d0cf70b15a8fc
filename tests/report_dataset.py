"""A generated jail with known answers, for the report tests.

Ten years (2016-2025) of a Rockingham-sized jail: 373 bookings, 205 of them
with a detainer, ten certified officers. Every case follows a planned path
whose outcome, hours held, pickup delay and serving officer the plan knows in
advance; the events go through the real intake and the real backstop with the
clock set to each event's instant, so the database holds what a real run would.
The tests compare the report with the plan, never with the report's own code.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from custody.service.backstop import sweep
from custody.service.core import Core, Sender
from custody.service.intake import ingest
from custody.service.roster import load_roster
from tests.builders import copy_event, detainer_event, lift_event, release_event, released_event, service_event, transfer_event, utc

OPERATOR = Sender("generator")
BADGES = [f"W-{n:02d}" for n in range(1, 11)]
# Every certification lapses on 2019-06-30 and the renewals start on 2019-07-04:
# three known days without a certified officer.
ROSTER_FIRST = "badge,name,certified_on,expires_on,facility\n" + "".join(
    f"{b},Officer {b},2015-06-01,2019-06-30,RCJ\n" for b in BADGES)
ROSTER_RENEWED = "badge,name,certified_on,expires_on,facility\n" + "".join(
    f"{b},Officer {b},2019-07-04,{'2026-12-20' if b == 'W-03' else '2029-12-31'},RCJ\n" for b in BADGES)
UNCOVERED_DAYS = [date(2019, 7, 1), date(2019, 7, 2), date(2019, 7, 3)]

MIX = {  # path -> cases
    "picked_up": 70,
    "released_at_limit": 60,
    "lifted_before_t0": 10,
    "lifted_during_hold": 5,
    "notify_only_g": 12,
    "notify_only_n": 3,
    "no_warrant": 8,
    "identity_unverified": 2,
    "no_service": 5,
    "transferred_elsewhere": 10,
    "still_open": 20,
}
OUTCOME_OF_PATH = {
    "picked_up": "picked_up", "released_at_limit": "released_at_limit", "lifted_before_t0": "lifted",
    "lifted_during_hold": "lifted", "notify_only_g": "no_authority", "notify_only_n": "no_authority",
    "no_warrant": "no_authority", "identity_unverified": "no_authority", "no_service": "no_authority",
    "transferred_elsewhere": "transferred_elsewhere", "still_open": "still_open",
}
FORM_OF_PATH = {"notify_only_g": "I-247G", "notify_only_n": "legacy", "no_warrant": "I-247A without warrant"}
BOOKINGS = 373


@dataclass
class PlannedCase:
    booking: str
    path: str
    detainer_at: datetime
    t0: datetime | None = None
    ended_at: datetime | None = None       # when the case stops being open
    hours_held: float | None = None         # T0 to leaving custody, holds only
    pickup_delay: float | None = None
    badge: str | None = None
    served_at: datetime | None = None
    release_notice_acked: bool = False

    @property
    def outcome(self) -> str:
        return OUTCOME_OF_PATH[self.path]

    @property
    def form_group(self) -> str:
        return FORM_OF_PATH.get(self.path, "I-247A with warrant")


@dataclass
class Jail:
    cases: list[PlannedCase] = field(default_factory=list)
    booking_times: list[datetime] = field(default_factory=list)
    steps: list[tuple[datetime, int, object]] = field(default_factory=list)  # (when, order, event dict or "sweep")


def _in_uncovered_window(instant: datetime) -> bool:
    # Keep every stay of a served case clear of the roster gap (and its time-zone edges).
    return utc(2019, 6, 25) <= instant <= utc(2019, 7, 8)


def plan(seed: int = 2020) -> Jail:
    rng = random.Random(seed)
    jail = Jail()
    paths = [p for p, n in MIX.items() if p != "still_open" for _ in range(n)]
    rng.shuffle(paths)
    open_at_end = MIX["still_open"]
    earlier = BOOKINGS - open_at_end
    with_detainer = sorted(rng.sample(range(earlier), len(paths)))
    paths_of = dict(zip(with_detainer, paths)) | {n: "still_open" for n in range(earlier, BOOKINGS)}
    start, span = utc(2016, 1, 4, 15), (utc(2025, 10, 1) - utc(2016, 1, 4)).total_seconds()
    badge_turn = 0
    with_t0 = 0
    for number in range(BOOKINGS):
        if number < earlier:
            booked = start + timedelta(seconds=int(span * number / earlier) + rng.randrange(0, 3600 * 5))
        else:  # the last bookings are still waiting for release when the decade ends
            booked = utc(2025, 12, 1, 15) + timedelta(hours=11 * (number - earlier))
        jail.booking_times.append(booked)
        booking = f"RC-{number + 1:05d}"
        if number not in paths_of:
            # a booking without a detainer: the jail's feed still reports its release
            jail.steps.append((booked + timedelta(days=3), 0, release_event(f"{booking}-r", booking, booked + timedelta(days=3))))
            continue
        path = paths_of[number]
        detainer_at = booked + timedelta(days=1)
        case = PlannedCase(booking, path, detainer_at)
        jail.cases.append(case)
        form = {"notify_only_g": ("I-247G", False, None), "notify_only_n": ("I-247N", False, None),
                "no_warrant": ("I-247A", True, None)}.get(path, ("I-247A", True, f"W-{number + 1:05d}"))
        jail.steps.append((detainer_at, 1, detainer_event(f"{booking}-d", booking, detainer_at, form=form[0], box1=form[1],
                                                          warrant=form[2], verified=path != "identity_unverified",
                                                          a_number=f"A{200000000 + number}", event_number=f"EV{number}")))
        jail.steps.append((detainer_at + timedelta(hours=2), 1, copy_event(f"{booking}-c", booking, detainer_at + timedelta(hours=2))))
        if path == "still_open":
            continue
        if path == "lifted_before_t0":
            lifted = detainer_at + timedelta(days=2)
            jail.steps.append((lifted, 1, lift_event(f"{booking}-l", booking, lifted)))
            case.ended_at = lifted
            continue
        if path == "transferred_elsewhere":
            moved = detainer_at + timedelta(days=3)
            jail.steps.append((moved, 1, transfer_event(f"{booking}-x", booking, moved, agency="Guilford County Jail")))
            case.ended_at = moved
            continue
        t0 = detainer_at + timedelta(days=4 + rng.randrange(0, 50), minutes=rng.randrange(0, 60 * 24))
        while _in_uncovered_window(t0) or _in_uncovered_window(t0 + timedelta(hours=48)):
            t0 += timedelta(days=20)
        case.t0 = t0
        jail.steps.append((t0, 1, release_event(f"{booking}-r", booking, t0)))
        if with_t0 % 3 == 0:
            case.release_notice_acked = True
            ack_at = t0 + timedelta(minutes=30)
            jail.steps.append((ack_at, 3, {"event_id": f"{booking}-ack", "type": "notice.acknowledged", "occurred_at": _iso(ack_at),
                                           "booking_number": booking, "notice": "release-notice", "acknowledged_by": "ERO duty officer"}))
        with_t0 += 1
        if path in ("notify_only_g", "notify_only_n", "no_warrant", "identity_unverified"):
            left = t0 + timedelta(minutes=15)
            jail.steps.append((left, 1, released_event(f"{booking}-out", booking, left)))
            case.ended_at = t0  # closed at T0: no hold
            continue
        if path == "no_service":
            jail.steps.append((t0 + timedelta(hours=1), 2, "sweep"))  # the grace runs out
            left = t0 + timedelta(hours=1, minutes=30)
            jail.steps.append((left, 1, released_event(f"{booking}-out", booking, left)))
            case.ended_at = left
            continue
        case.badge = BADGES[badge_turn % len(BADGES)]
        badge_turn += 1
        case.served_at = t0 + timedelta(minutes=20)
        jail.steps.append((case.served_at, 1, service_event(f"{booking}-s", booking, case.served_at, badge=case.badge,
                                                            warrant=f"W-{number + 1:05d}")))
        for mark in (36, 44, 46, 47):  # reminders and the release order, as the backstop wakes for them
            jail.steps.append((t0 + timedelta(hours=mark), 2, "sweep"))
        if path == "picked_up":
            hours = round(rng.uniform(1.0, 45.5), 2)
            pickup = t0 + timedelta(hours=hours)
            jail.steps.append((pickup, 1, transfer_event(f"{booking}-x", booking, pickup, agency="ICE")))
            case.hours_held, case.ended_at = hours, pickup
            case.pickup_delay = hours - 20 / 60
        elif path == "released_at_limit":
            left = t0 + timedelta(hours=46, minutes=30)
            jail.steps.append((left, 1, released_event(f"{booking}-out", booking, left)))
            case.hours_held, case.ended_at = 46.5, left
        elif path == "lifted_during_hold":
            lifted, left = t0 + timedelta(hours=10), t0 + timedelta(hours=10, minutes=30)
            jail.steps.append((lifted, 1, lift_event(f"{booking}-l", booking, lifted)))
            jail.steps.append((left, 1, released_event(f"{booking}-out", booking, left)))
            case.hours_held, case.ended_at = 10.5, left
    assert len(jail.cases) == sum(MIX.values()), len(jail.cases)
    return jail


def _iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def run(core: Core, jail: Jail) -> None:
    """Feed the planned jail through the real intake and backstop, in time order."""
    clock = core.clock
    clock.set(utc(2015, 6, 1))
    load_roster(core, ROSTER_FIRST, source="generator", actor="generator")
    roster_renewal = utc(2019, 7, 4, 5)
    steps = sorted(jail.steps + [(roster_renewal, 0, "roster")], key=lambda s: (s[0], s[1]))
    for when, _, step in steps:
        clock.set(when)
        if step == "sweep":
            sweep(core)
        elif step == "roster":
            load_roster(core, ROSTER_RENEWED, source="generator", actor="generator")
        else:
            sweep(core)  # the backstop runs before each fact, as it would have in real time
            result = ingest(core, step, OPERATOR)
            assert result.result == "accepted", (step, result)
