"""When the backstop sleeps after a pass: never past a due instant, and never
a pause in front of a case that fell due while the pass was running."""
from datetime import timedelta

from custody.loops import wait_after
from custody.service.backstop import SweepReport
from tests.builders import utc

START = utc(2026, 3, 11, 12, 0)
RETRY = timedelta(milliseconds=200)


def report(next_due_at, truncated=False) -> SweepReport:
    return SweepReport(START, next_due_at=next_due_at, truncated=truncated)


def test_nothing_waiting_sleeps_the_interval():
    assert wait_after(report(None), START, RETRY) is None


def test_sleeps_until_the_next_due_instant():
    assert wait_after(report(START + timedelta(minutes=5)), START + timedelta(seconds=1), RETRY) == timedelta(minutes=5, seconds=-1)


def test_a_case_that_fell_due_during_the_pass_gets_another_pass_at_once():
    # Due 3 ms after the pass read its due list; the pass took 10 ms.
    assert wait_after(report(START + timedelta(milliseconds=3)), START + timedelta(milliseconds=10), RETRY) == timedelta(0)


def test_a_case_due_before_the_pass_and_still_due_after_it_is_retried_after_a_pause():
    # It could not be advanced (contention or an error): no busy loop.
    assert wait_after(report(START - timedelta(seconds=1)), START + timedelta(milliseconds=10), RETRY) == RETRY
    assert wait_after(report(START), START + timedelta(milliseconds=10), RETRY) == RETRY


def test_a_pass_that_read_only_part_of_what_was_due_goes_again_at_once():
    assert wait_after(report(START - timedelta(seconds=1), truncated=True), START + timedelta(seconds=2), RETRY) == timedelta(0)
