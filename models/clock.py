"""Time, injected. Every rule takes `now` from a Clock so tests never sleep."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol

UTC = timezone.utc


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, start: datetime):
        self._now = as_utc(start)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = as_utc(instant)

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now


def as_utc(instant: datetime) -> datetime:
    """Normalise an aware instant to UTC; a naive one is a programming error,
    because a wall-clock time without an offset cannot be placed on the legal clock."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant!r}: an offset is required")
    return instant.astimezone(UTC)


def iso_z(instant: datetime | None) -> str | None:
    if instant is None:
        return None
    return as_utc(instant).isoformat().replace("+00:00", "Z")
