"""Prints the events of one case, step by step, as JSON Lines with times
relative to now (floored to the quarter hour, so running a step twice within
the same quarter sends the same events, and they come back as duplicates).

    python3 examples/one_case.py detainer | bash .ci/custody ingest -
    python3 examples/one_case.py release  | bash .ci/custody ingest -
    python3 examples/one_case.py pickup   | bash .ci/custody ingest -

Standard library only, so it runs before anything is installed.
"""
import json
import sys
from datetime import datetime, timedelta, timezone

BOOKING = "B-2026-0412"
now = datetime.now(timezone.utc)
base = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)


def at(hours: float) -> str:
    return (base + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


STEPS = {
    # The detainer arrives the day before; a copy is given to the person.
    "detainer": [
        {"event_id": "ex-det-1", "type": "detainer.received", "occurred_at": at(-20), "booking_number": BOOKING,
         "facility": "RCJ",
         "detainer": {"form": "I-247A", "requests_custody": True, "a_number": "A201555012",
                      "ice_event_number": "ATL2611000123", "issuing_office": "ICE ERO Atlanta",
                      "issued_at": at(-21)},
         "warrant": {"form": "I-200", "number": "I200-2026-77812"},
         "subject": {"name": "Example Person", "dob": "1988-04-02", "identity_verified": True}},
        {"event_id": "ex-copy-1", "type": "detainer.copy_served", "occurred_at": at(-19), "booking_number": BOOKING,
         "served_by": "Records clerk M. Hall", "language": "Spanish"},
    ],
    # Bond is posted (T0); a certified WSO serves the warrant 5 minutes later,
    # well inside the 1-hour grace of the shipped policy.
    "release": [
        {"event_id": "ex-rel-1", "type": "release.authorized", "occurred_at": at(-0.25), "booking_number": BOOKING,
         "reason": "bond_posted"},
        {"event_id": "ex-srv-1", "type": "warrant.served", "occurred_at": at(-1 / 6), "booking_number": BOOKING,
         "officer_badge": "W-1024", "warrant_number": "I200-2026-77812", "location": "RCJ"},
    ],
    # ICE takes custody within the hold.
    "pickup": [
        {"event_id": "ex-ice-1", "type": "custody.transferred", "occurred_at": at(0), "booking_number": BOOKING,
         "agency": "ICE", "officer_name": "ERO Officer J. Pratt"},
    ],
}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in STEPS:
        sys.exit(f"usage: python3 examples/one_case.py {{{'|'.join(STEPS)}}}")
    for event in STEPS[sys.argv[1]]:
        print(json.dumps(event))
