"""The open-cases benchmark constructs most of its case runs instead of
starting them (bench/open_cases.py): a constructed run must wait under the very
key the case flow's first wait takes, and its case_runs row must carry the
digest the flow records, or the benchmark measures something the product never
builds."""
from datetime import timedelta

import pytest

from bench.common import detainer_event
from bench.open_cases import first_wait
from custody.adapters.prefect.mirror import mirror_digest
from custody.service.core import Sender
from custody.service.intake import ingest
from flows.case import WAIT_KEY
from tests.builders import policy


@pytest.mark.parametrize("mode", ["detainer", "wso"])
def test_the_constructed_wait_is_the_one_the_flow_takes_for_the_case_the_intake_opens(make_core, clock, mode):
    core = make_core(policy(mode=mode))
    raw = detainer_event("o410", 7, clock.now() - timedelta(hours=1), 410)
    result = ingest(core, raw, Sender("bench"))
    assert result.result == "accepted", result.as_dict()
    with core.uow(read_only=True) as uow:
        case = uow.cases.get(result.case_id)

    digest, key = first_wait(result.case_id, raw, core.policy, at=clock.now())

    stored = mirror_digest(case, core.policy)
    assert digest == stored
    # flows/case.py: f"{WAIT_KEY[status]}-{mirror_digest[:16]}-{attempt}", attempt 0 for the first wait
    assert key == f"{WAIT_KEY[str(case.status)]}-{stored[:16]}-0"
    assert key.startswith("waits-for-release-") and "-v2-" not in key


def test_another_case_id_gives_another_key(make_core, clock):
    core = make_core(policy(mode="detainer"))
    raw = detainer_event("o410", 7, clock.now() - timedelta(hours=1), 410)
    assert first_wait("2026-00001", raw, core.policy, at=clock.now()) != first_wait("2026-00002", raw, core.policy, at=clock.now())


class Clock:
    """The wait's clock and sleep, injected: no real waiting."""

    def __init__(self):
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def test_the_reading_waits_until_the_flow_runs_alive_have_exited():
    from bench.open_cases import wait_for_long_lived

    clock = Clock()
    alive = iter([[101, 102, 103], [102, 103], [103, 104], []])  # 101 exits, 104 starts, then none
    found = wait_for_long_lived(lambda: next(alive), timeout=120, every=0.5, clock=clock.now, sleep=clock.sleep)
    assert found == {"waited_s": 1.5, "flow_runs_seen": 4, "flow_runs_left": 0}


def test_the_wait_is_bounded_and_says_what_was_still_alive():
    from bench.open_cases import wait_for_long_lived

    clock = Clock()
    found = wait_for_long_lived(lambda: [7, 8], timeout=10, every=1, clock=clock.now, sleep=clock.sleep)
    assert found == {"waited_s": 10, "flow_runs_seen": 2, "flow_runs_left": 2}


def test_no_flow_run_alive_means_no_wait():
    from bench.open_cases import wait_for_long_lived

    clock = Clock()
    assert wait_for_long_lived(list, clock=clock.now, sleep=clock.sleep) == {"waited_s": 0, "flow_runs_seen": 0, "flow_runs_left": 0}
