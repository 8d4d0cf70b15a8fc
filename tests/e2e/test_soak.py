"""The short soak (`python -m bench.soak --short`): the real system under a
simulated jail with every kind of fault; the build fails if an invariant breaks."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from custody.simulation import PATHS
from tests.integration.cli import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.skipif(bool(os.environ.get("CUSTODY_TEST_DATABASE_URL")),
                    reason="the soak brings up its own system on the embedded SQLite; .ci/run runs it in the SQLite pass")
def test_the_short_soak_keeps_every_invariant(tmp_path):
    report = tmp_path / "soak.md"
    done = subprocess.run([sys.executable, "-m", "bench.soak", "--short", "--home", str(tmp_path / "home"),
                           "--report", str(report)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    text = report.read_text() if report.exists() else done.stdout + done.stderr
    assert done.returncode == 0, text[-6000:]
    assert text.startswith("# Soak report: ALL INVARIANTS HOLD")
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ") and line.count("|") == 4]
    faults = {r[0].strip(): (int(r[1]), int(r[2])) for r in rows if r[1].strip().isdigit()}
    assert len(faults) == 6 and all(done_ >= 1 and done_ == planned for planned, done_ in faults.values()), faults
    # Every path a case can take, at least once (the short soak has few cases: see bench/soak/run.py).
    jail = text.split("## The simulated jail", 1)[1].split("##", 1)[0]
    paths = {r[0].strip(): int(r[1]) for r in (line.split("|")[1:-1] for line in jail.splitlines() if line.startswith("| "))
             if r[1].strip().isdigit()}
    assert set(paths) == set(PATHS) and min(paths.values()) >= 1, paths
    assert "| holds that ran past their deadline | 0 | 0 | yes |" in text
