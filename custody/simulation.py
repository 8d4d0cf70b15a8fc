"""A simulated jail, for the demo and the soak: cases with realistic paths
(domain.md's volumes: most holds end without a pickup, some are lifted, some
notify-only, some never served, some transferred), planned as timed sends of
events.

Times are offsets in seconds from the start of the feed; an event's
`occurred_at` is its planned instant, whatever the moment it is finally sent
(a delayed or reordered event arrives late but tells the truth)."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

# path -> share of cases
PATHS = {
    "held_released": 0.42,     # served, never picked up: release order, the desk releases
    "held_picked_up": 0.20,    # served, ICE takes custody inside the hold
    "lifted_before_t0": 0.04,
    "lifted_in_hold": 0.04,
    "notify_only": 0.08,       # I-247G: notify ICE, no hold
    "unserved": 0.08,          # nobody serves within the grace: no hold
    "transferred": 0.05,       # to another county before T0
    "unverified": 0.04,        # identity not verified: no hold
    "awaiting": 0.05,          # still held on local charges when the soak ends
}
SENDER_OF = {
    "detainer.received": "ice", "detainer.copy_served": "records", "release.authorized": "jms",
    "warrant.served": "wso", "custody.transferred": "jms", "detainer.lifted": "ice",
    "inmate.released": "release-desk", "notice.acknowledged": "ice",
}


@dataclass(frozen=True)
class Timing:
    """The compressed policy's durations, in seconds."""
    limit: float
    grace: float
    lead: float


@dataclass
class Send:
    at: float                  # when to send (offset)
    occurred: float            # the event's own instant (offset)
    case: int
    booking: str
    type: str
    fields: dict[str, Any]
    event_id: str
    note: str = ""             # why it is sent this way (a fault), for the report
    # "event": posted by its sender; "form": a warrant service that the WSO submits
    # through the case run's form in the Prefect UI instead (the soak), at `at`
    via: str = "event"

    @property
    def sender(self) -> str:
        return SENDER_OF[self.type]


@dataclass
class PlannedCase:
    number: int
    path: str
    booking: str
    start: float
    t0: float | None = None


@dataclass
class Plan:
    cases: list[PlannedCase] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)

    def of_case(self, number: int) -> list[Send]:
        return [s for s in self.sends if s.case == number]


def _paths(count: int, rng: random.Random) -> list[str]:
    """`count` paths in PATHS's shares; every path at least once when there is
    room for each (a short run still goes down every road), the commonest path
    making up the difference."""
    least = 1 if count >= len(PATHS) else 0
    paths = [p for p, share in PATHS.items() for _ in range(max(least, round(share * count)))]
    while len(paths) > count and max(map(paths.count, PATHS)) > least:
        paths.remove(max(PATHS, key=paths.count))  # rounding gave one too many: the commonest path gives it back
    while len(paths) < count:
        paths.append("held_released")
    paths = paths[:count]
    rng.shuffle(paths)
    return paths


def plan(count: int, feed_seconds: float, timing: Timing, rng: random.Random, run_tag: str,
         forms: bool = False) -> Plan:
    """`forms`: every other served case's WSO reports through the Prefect UI's
    form, a third of them in the last 15 seconds of the service window. (Chosen
    by case number, not drawn: the same seed plans the same jail either way.)"""
    out = Plan()
    for number, path in enumerate(_paths(count, rng)):
        start = rng.uniform(0, feed_seconds * 0.85)
        booking = f"SIM-{run_tag}-{number:04d}"
        case = PlannedCase(number, path, booking, start)
        out.cases.append(case)

        def send(offset: float, kind: str, **fields: Any) -> None:
            at = start + offset
            out.sends.append(Send(at, at, number, booking, kind, fields, f"{booking}-{kind.split('.')[1]}-{len(out.sends)}"))

        form, box1, warrant, verified = "I-247A", True, f"I200-{run_tag}-{number:04d}", path != "unverified"
        if path == "notify_only":
            form, box1, warrant = "I-247G", False, None
        detainer: dict[str, Any] = {
            "detainer": {"form": form, "requests_custody": box1, "a_number": f"A9{rng.randrange(10**7, 10**8)}",
                         "ice_event_number": f"EV-{run_tag}-{number}", "issuing_office": "ERO (simulated)",
                         "issued_at_offset": -60},
            "subject": {"name": f"Simulated Person {number}", "dob": "1985-05-05", "identity_verified": verified},
        }
        if warrant:
            detainer["warrant"] = {"form": "I-200", "number": warrant}
        send(0, "detainer.received", **detainer)
        send(rng.uniform(2, 8), "detainer.copy_served", served_by="Records (simulated)", language="Spanish")
        if path == "awaiting":
            continue
        if path == "lifted_before_t0":
            send(rng.uniform(10, 30), "detainer.lifted", lifted_by="ERO (simulated)", note="simulation: lifted before release")
            continue
        if path == "transferred":
            send(rng.uniform(10, 30), "custody.transferred", agency="Guilford County Jail", officer_name="Deputy (simulated)")
            continue
        t0 = rng.uniform(20, 60)
        case.t0 = start + t0
        send(t0, "release.authorized", reason="bond_posted")
        if rng.random() < 0.3:
            send(t0 + rng.uniform(5, 20), "notice.acknowledged", notice="release-notice", acknowledged_by="ERO duty (simulated)")
        if path in ("notify_only", "unverified", "unserved"):
            continue  # the software releases these on its own (no hold, or the grace runs out)
        served = t0 + rng.uniform(2, timing.grace * 0.6)
        send(served, "warrant.served", officer_badge="W-1031", warrant_number=warrant, location="RCJ")
        if forms and number % 2:
            out.sends[-1].via = "form"
            if number % 6 == 1:  # the last 15 s of the window
                out.sends[-1].at = out.sends[-1].occurred = start + t0 + max(2.0, timing.grace - 1 - (number * 7) % 14)
        if path == "held_picked_up":
            send(t0 + rng.uniform(0.2, 0.6) * (timing.limit - timing.lead), "custody.transferred",
                 agency="ICE", officer_name="ERO officer (simulated)")
        elif path == "lifted_in_hold":
            send(t0 + rng.uniform(0.2, 0.5) * (timing.limit - timing.lead), "detainer.lifted",
                 lifted_by="ERO (simulated)", note="simulation: lifted during the hold")
    out.sends.sort(key=lambda s: s.at)
    return out


def event_body(send: Send, start_epoch: float, iso) -> dict[str, Any]:
    """The JSON the sender posts; `iso` turns an epoch second into ISO 8601 with an offset."""
    body: dict[str, Any] = {"event_id": send.event_id, "type": send.type, "occurred_at": iso(start_epoch + send.occurred),
                            "booking_number": send.booking}
    for key, value in send.fields.items():
        if key == "detainer":
            value = dict(value)
            value["issued_at"] = iso(start_epoch + send.occurred + value.pop("issued_at_offset"))
        body[key] = value
    return body
