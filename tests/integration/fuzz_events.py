"""Hypothesis strategies for event bodies as senders get them wrong: valid
events of every type, then a field replaced, removed or added, a type swapped,
text full of injection strings, and lines that are not JSON or not UTF-8."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from tests.builders import (
    copy_event,
    detainer_event,
    iso,
    lift_event,
    release_event,
    released_event,
    scheduled_event,
    service_event,
    transfer_event,
)

# SQL, template and markup injection, as they would reach a text field.
INJECTIONS = (
    "Robert'); DROP TABLE cases;--",
    "' OR '1'='1",
    '" OR 1=1 --',
    "1; DELETE FROM event_inbox WHERE 1=1",
    "x' UNION SELECT subject_name, subject_dob FROM detainers --",
    "{{7*7}}",
    "{{ config.__class__.__init__.__globals__ }}",
    "{% for x in range(9) %}{{x}}{% endfor %}",
    "${7*7}",
    "#{7*7}",
    "<%= 7*7 %>",
    "{case_id}",
    "{0.__class__}",
    "%s%s%s%n",
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "![x](http://203.0.113.9/pixel.png)",
    "| a | b |",
    "$(touch /tmp/custody-pwned)",
    "`id`",
    "עֶרֶב טוֹב مساء الخير",  # right-to-left scripts (their direction-changing controls are refused: test_bad_input)
    "Zoë Ñúñez-Øster 李小龍",
)

TEXT_FIELDS = {  # every free-text field of the contract, by event type
    "detainer.received": [("subject", "name"), ("detainer", "issuing_office")],
    "detainer.copy_served": [("served_by",), ("language",)],
    "custody.transferred": [("agency",), ("officer_name",)],
    "detainer.lifted": [("lifted_by",), ("note",)],
    "inmate.released": [("released_by",)],
    "notice.acknowledged": [("acknowledged_by",)],
}

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                         st.floats(allow_nan=False), st.text(max_size=40), st.sampled_from(INJECTIONS))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=12)


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def base_events(n: int, booking: str, a_number: str) -> list[dict[str, Any]]:
    t = now() - timedelta(minutes=30)
    return [
        detainer_event(f"fz-{n}-d", booking, t - timedelta(hours=2), a_number=a_number),
        copy_event(f"fz-{n}-c", booking, t - timedelta(hours=1)),
        scheduled_event(f"fz-{n}-s", booking, t - timedelta(hours=1), t + timedelta(days=3)),
        release_event(f"fz-{n}-r", booking, t),
        service_event(f"fz-{n}-w", booking, t + timedelta(minutes=5), badge="W-1"),
        transfer_event(f"fz-{n}-x", booking, t + timedelta(minutes=10)),
        lift_event(f"fz-{n}-l", booking, t + timedelta(minutes=10)),
        released_event(f"fz-{n}-o", booking, t + timedelta(minutes=20)),
        {"event_id": f"fz-{n}-a", "type": "notice.acknowledged", "occurred_at": iso(t), "booking_number": booking,
         "notice": "release-notice", "acknowledged_by": "ERO duty officer"},
    ]


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, prefix + (key,))
    return found


def _set(event: dict, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(event.get(key), dict):
            event[key] = {}
        event = event[key]
    event[path[-1]] = value


def _drop(event: dict, path: tuple) -> None:
    for key in path[:-1]:
        event = event[key]
    event.pop(path[-1], None)


@st.composite
def events(draw) -> Any:
    """One event body: valid, or wrong in one or two ways."""
    n = draw(st.integers(0, 10 ** 9))
    booking = draw(st.sampled_from(["FZ-1", "FZ-2", "FZ-3"]))
    a_number = draw(st.sampled_from(["A400000001", "A400000002", "A400000003"]))
    event = draw(st.sampled_from(base_events(n, booking, a_number)))
    for _ in range(draw(st.integers(0, 2))):
        how = draw(st.sampled_from(["inject", "replace", "drop", "add", "retype", "time"]))
        paths = _paths(event)
        if how == "inject" and isinstance(event.get("type"), str) and event["type"] in TEXT_FIELDS:
            _set(event, draw(st.sampled_from(TEXT_FIELDS[event["type"]])), draw(st.sampled_from(INJECTIONS) | st.text(min_size=1)))
        elif how == "replace":
            _set(event, draw(st.sampled_from(paths)), draw(json_values))
        elif how == "drop":
            _drop(event, draw(st.sampled_from(paths)))
        elif how == "add":
            event[draw(st.text(max_size=12))] = draw(json_values)
        elif how == "retype":
            event["type"] = draw(st.sampled_from([*TEXT_FIELDS, "release.authorized", "warrant.served", "release.scheduled",
                                                  "nonsense", ""]))
        elif how == "time":
            offset = draw(st.sampled_from(["Z", "+14:00", "-12:00", "", "+05:30"]))
            when = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
            _set(event, draw(st.sampled_from([p for p in paths if p[-1] in ("occurred_at", "issued_at", "expected_release_at", "dob")]
                                             or [("occurred_at",)])), when.isoformat() + offset)
    return event


def lines() -> st.SearchStrategy[bytes]:
    """One line of a JSON Lines file, as bytes: mostly JSON events, sometimes not JSON or not UTF-8."""
    as_json = events().map(lambda e: json.dumps(e).encode())
    as_raw_utf8 = events().map(lambda e: json.dumps(e, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    other = st.one_of(
        json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
        events().map(lambda e: json.dumps(e, ensure_ascii=False).encode("latin-1", "replace")),
        st.integers(1, 3000).map(lambda d: b"[" * d + b"]" * d),
    )
    return st.one_of(as_json, as_json, as_raw_utf8, other)
