"""The simulated jail's mix of paths (the demo and the soak)."""
import random
from collections import Counter

import pytest

from custody.simulation import PATHS, _paths


@pytest.mark.parametrize("count", [len(PATHS), 18, 24, 300])
def test_every_path_is_taken_once_there_is_room_for_each(count):
    paths = Counter(_paths(count, random.Random(count)))
    assert sum(paths.values()) == count
    assert set(paths) == set(PATHS)


def test_a_large_run_follows_the_shares():
    paths = Counter(_paths(300, random.Random(1)))
    assert all(abs(paths[p] - share * 300) <= 1 for p, share in PATHS.items())


def test_fewer_cases_than_paths_still_gives_that_many():
    assert len(_paths(3, random.Random(1))) == 3
