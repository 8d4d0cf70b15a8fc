"""Roster watch: a warrant can only be served by an officer whose WSO
certification is current on the day of service (rule 5), so supervisors must
learn ahead of time when certifications run out and on which days no
certified officer would be on the roster at a facility."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable

from models.domain import RosterEntry
from models.policy import Policy


@dataclass(frozen=True)
class Expiring:
    badge: str
    name: str
    facility: str
    expires_on: date
    days_left: int  # negative: already expired but still on the roster


@dataclass(frozen=True)
class RosterWatch:
    today: date
    window_days: int
    expiring: list[Expiring]
    uncovered: dict[str, list[date]]  # facility -> days in [today, today+window] without a certified officer

    @property
    def anything_to_report(self) -> bool:
        return bool(self.expiring) or any(self.uncovered.values())

    def text(self) -> str:
        lines = [f"WSO roster watch for {self.today.isoformat()} (next {self.window_days} days)."]
        if self.expiring:
            lines.append("Certifications expiring:")
            lines += [f"- badge {e.badge} ({e.name}), {e.facility}: "
                      + (f"expired {-e.days_left} day(s) ago, on {e.expires_on}" if e.days_left < 0
                         else f"expires {e.expires_on} (in {e.days_left} day(s))") for e in self.expiring]
        for facility, days in sorted(self.uncovered.items()):
            if days:
                lines.append(f"Days without a certified WSO at {facility}: {format_days(days)}. "
                             "A warrant cannot be served on those days, so no hold can start (rule 6).")
        if not self.anything_to_report:
            lines.append("Nothing to report: every facility has a certified officer every day of the window.")
        return "\n".join(lines)


def format_days(days: list[date]) -> str:
    """Runs of consecutive days as ranges: '2026-12-01..2026-12-03, 2026-12-09'."""
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if runs and day == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return ", ".join(a.isoformat() if a == b else f"{a.isoformat()}..{b.isoformat()}" for a, b in runs)


def watch(roster: Iterable[RosterEntry], policy: Policy, today: date, window_days: int = 30) -> RosterWatch:
    if window_days < 0:
        raise ValueError("window: must not be negative")
    roster = list(roster)
    last = today + timedelta(days=window_days)
    expiring = sorted((Expiring(e.badge, e.name, e.facility, e.expires_on, (e.expires_on - today).days)
                       for e in roster if e.expires_on <= last),
                      key=lambda e: (e.expires_on, e.badge))
    days = [today + timedelta(days=n) for n in range(window_days + 1)]
    uncovered = {facility: [d for d in days if not any(e.facility == facility and e.certified_on_day(d) for e in roster)]
                 for facility in policy.facilities}
    return RosterWatch(today, window_days, expiring, uncovered)


def days_without_officer(history: Iterable[RosterEntry], policy: Policy, first: date, last: date) -> dict[str, list[date]]:
    """Past days on which no officer on the roster in force that day was certified."""
    history = list(history)
    zone = policy.timezone
    found: dict[str, list[date]] = {f: [] for f in policy.facilities}
    day = first
    while day <= last:
        noon = datetime.combine(day, time(12), tzinfo=zone).astimezone(timezone.utc)
        for facility in policy.facilities:
            covered = any(e.facility == facility and e.certified_on_day(day)
                          and (e.valid_from is None or e.valid_from <= noon)
                          and (e.valid_to is None or e.valid_to > noon) for e in history)
            if not covered:
                found[facility].append(day)
        day += timedelta(days=1)
    return found
