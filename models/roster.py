"""The WSO roster file: CSV with header badge,name,certified_on,expires_on,facility."""
from __future__ import annotations

import csv
import io
from datetime import date

from models.domain import RosterEntry
from models.policy import Policy

HEADER = ["badge", "name", "certified_on", "expires_on", "facility"]


class RosterError(ValueError):
    pass


def parse_roster(text: str, policy: Policy) -> list[RosterEntry]:
    """All or nothing: one bad line refuses the whole file, naming line and field,
    because a half-loaded roster would wrongly refuse or accept services."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise RosterError("roster: the file is empty (expected header badge,name,certified_on,expires_on,facility)") from None
    if header != HEADER:
        raise RosterError(f"roster: header must be {','.join(HEADER)} (found {','.join(header)})")
    entries: list[RosterEntry] = []
    seen: set[str] = set()
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(HEADER):
            raise RosterError(f"roster line {line_no}: expected {len(HEADER)} fields, found {len(row)}")
        badge, name, certified, expires, facility = (cell.strip() for cell in row)
        where = f"roster line {line_no}"
        if not badge or not badge.replace("-", "").isalnum() or len(badge) > 128:
            raise RosterError(f"{where}: badge: {badge!r} must be letters, digits or '-'")
        if badge in seen:
            raise RosterError(f"{where}: badge: {badge!r} appears twice")
        if not name or len(name) > 200:
            raise RosterError(f"{where}: name: required (at most 200 characters)")
        certified_on = _date(certified, f"{where}: certified_on")
        expires_on = _date(expires, f"{where}: expires_on")
        if expires_on < certified_on:
            raise RosterError(f"{where}: expires_on: {expires} is before certified_on {certified}")
        if facility and not policy.has_facility(facility):
            raise RosterError(f"{where}: facility: {facility!r} is not one of this jail's facilities ({', '.join(policy.facilities)})")
        seen.add(badge)
        entries.append(RosterEntry(badge, name, certified_on, expires_on, facility or (policy.single_facility or "")))
    return entries


def _date(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RosterError(f"{where}: {text!r} is not a date (YYYY-MM-DD)") from None
