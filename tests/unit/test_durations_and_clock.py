"""Durations as a county writes them, and the clock every rule is handed."""
from datetime import datetime, timedelta, timezone, tzinfo

import pytest

from models.clock import FixedClock, SystemClock, as_utc, iso_z
from models.durations import format_duration, parse_duration

EST = timezone(timedelta(hours=-5))


@pytest.mark.parametrize("text, seconds", [("48h", 172800), ("90m", 5400), ("1h30m", 5400), ("45s", 45), ("2d", 172800),
                                           (" 1h 30m ", 5400), ("0s", 0), ("1d1h1m1s", 90061)])
def test_durations_are_read_as_written(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "  ", "48", "h", "1.5h", "-1h", "1w", "48h later"])
def test_anything_else_is_refused_saying_how_to_write_one(text):
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == f"{text!r} is not a duration (write e.g. '48h', '90m', '1h30m')"


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (45, "45s"), (60, "1m"), (3600, "1h"), (5400, "1h30m"),
                                           (3661, "1h1m1s"), (172800, "48h"), (-5400, "-1h30m"), (3601, "1h1s")])
def test_durations_are_written_back_shortest_first_hours(seconds, text):
    assert format_duration(timedelta(seconds=seconds)) == text


def test_a_fixed_clock_moves_only_when_told():
    clock = FixedClock(datetime(2026, 3, 1, 7, tzinfo=EST))
    assert clock.now() == datetime(2026, 3, 1, 12, tzinfo=timezone.utc) and clock.now().tzinfo is timezone.utc
    assert clock.advance(timedelta(minutes=5)) == clock.now() == datetime(2026, 3, 1, 12, 5, tzinfo=timezone.utc)
    clock.set(datetime(2026, 3, 2, tzinfo=EST))
    assert clock.now() == datetime(2026, 3, 2, 5, tzinfo=timezone.utc)


def test_the_system_clock_tells_utc_now():
    before = datetime.now(timezone.utc)
    now = SystemClock().now()
    assert now.tzinfo is timezone.utc and before <= now <= datetime.now(timezone.utc)


def test_a_naive_instant_has_no_place_on_the_legal_clock():
    with pytest.raises(ValueError, match="naive datetime"):
        as_utc(datetime(2026, 3, 1, 12))
    with pytest.raises(ValueError):
        FixedClock(datetime(2026, 3, 1, 12))


def test_instants_are_written_in_utc_with_z():
    assert iso_z(datetime(2026, 3, 1, 7, tzinfo=EST)) == "2026-03-01T12:00:00Z"
    assert iso_z(None) is None


def test_an_instant_whose_zone_gives_no_offset_is_naive_too():
    class NoOffset(tzinfo):
        def utcoffset(self, dt):
            return None

    with pytest.raises(ValueError, match="naive datetime"):
        as_utc(datetime(2026, 3, 1, 12, tzinfo=NoOffset()))
