"""The event contract as JSON Schema, as tight as JSON Schema can say it.

A schema looser than intake makes "valid" generated events that intake refuses
(schemathesis's positive mode had nearly every one refused: instants from year 1
to 9999 against "between 1970 and 9000 and not in the future", blank names), and
a schema stricter than intake would call accepted events invalid. So every
pattern here admits exactly what intake admits, or, where a rule needs more than
a pattern can check (a day that exists in its month, the UTC instant an offset
gives), a little more, never less. The bounds that move with time are written
for the `now` the schema is served at: the schema served today describes the
instants intake accepts today."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from models.events import BIRTH_TOLERANCE, BOUNDS, EARLIEST, EARLIEST_BIRTH, FUTURE_TOLERANCE, LATEST, Event

_MONTH_DAY = "(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_CLOCK = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
_OFFSET = "(?:[01][0-9]|2[0-3]):[0-5][0-9]"


def years(first: int, last: int) -> str:
    """A regex matching the four-digit years first..last and no other."""
    parts, year = [], first
    while year <= last:
        width = 1
        while year % (width * 10) == 0 and year + width * 10 - 1 <= last:
            width *= 10
        digits = len(str(width)) - 1
        parts.append(f"{year:04d}"[:4 - digits] + "[0-9]" * digits)
        year += width
    return "(?:" + "|".join(parts) + ")"


def instant_pattern(first_year: int, last_year: int) -> str:
    """RFC 3339 date-times whose UTC instant may fall in first_year..last_year:
    the local date is in those years, or is the last day before them with an
    offset behind UTC, or the first day after them with an offset ahead of it."""
    within = f"{years(first_year, last_year)}-{_MONTH_DAY}[Tt ]{_CLOCK}(?:[Zz]|[+-]{_OFFSET})"
    before = f"{first_year - 1:04d}-12-31[Tt ]{_CLOCK}-{_OFFSET}"
    after = f"{last_year + 1:04d}-01-01[Tt ]{_CLOCK}\\+{_OFFSET}"
    return f"^(?:{within}|{before}|{after})$"


def date_pattern(first_year: int, last_year: int) -> str:
    return f"^{years(first_year, last_year)}-{_MONTH_DAY}$"


def bounds(kind: str, now: datetime) -> dict[str, Any]:
    if kind == "past-instant":
        return {"pattern": instant_pattern(EARLIEST.year, (now + FUTURE_TOLERANCE).year),
                "description": f"RFC 3339 with an offset, from {EARLIEST.year}, at most 5 minutes in the future"}
    if kind == "instant":
        return {"pattern": instant_pattern(EARLIEST.year, (LATEST - timedelta(microseconds=1)).year),
                "description": f"RFC 3339 with an offset, between {EARLIEST.year} and {LATEST.year}"}
    if kind == "birth-date":
        return {"pattern": date_pattern(EARLIEST_BIRTH.year, (now + BIRTH_TOLERANCE).year),
                "description": f"YYYY-MM-DD, from {EARLIEST_BIRTH.isoformat()}, not in the future"}
    raise ValueError(f"unknown bounds {kind!r}")


def event_json_schema(now: datetime, ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    """The JSON Schema of one event (the union of every type), as of `now`."""
    schema = TypeAdapter(Event).json_schema(ref_template=ref_template)

    def write_bounds(node: Any) -> None:
        if isinstance(node, dict):
            if BOUNDS in node:
                node.update(bounds(node.pop(BOUNDS), now))
            for value in node.values():
                write_bounds(value)
        elif isinstance(node, list):
            for value in node:
                write_bounds(value)

    write_bounds(schema)
    return schema
