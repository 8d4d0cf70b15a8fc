"""custody up refuses to run with a `models` (or tasks, flows, deployments)
that is not custody's own, and warns when another distribution installs one."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from custody.installation import TOP_LEVEL, foreign_packages, shared_with_other_distributions

ROOT = Path(__file__).resolve().parents[2]


def run(code: str, path: Path) -> object:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=path, check=True)
    return json.loads(done.stdout)


def test_this_installation_is_all_custodys_own():
    assert foreign_packages() == []
    assert shared_with_other_distributions() == {}


def test_a_models_package_found_first_elsewhere_is_named(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    found = run("import json; from custody.installation import foreign_packages; print(json.dumps(foreign_packages()))",
                tmp_path)
    assert len(found) == 1 and found[0].startswith("models: found at ") and str(tmp_path / "models") in found[0]


def test_another_distribution_that_installs_a_top_level_name_is_named(tmp_path):
    info = tmp_path / "other_tool-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: other-tool\nVersion: 1.0\n")
    (info / "RECORD").write_text("tasks/__init__.py,,\ntasks/queue.py,,\nother_tool-1.0.dist-info/METADATA,,\n")
    shared = run("import json; from custody.installation import shared_with_other_distributions as s; print(json.dumps(s()))",
                 tmp_path)
    assert shared == {"tasks": ["other-tool"]}
    assert set(TOP_LEVEL) == {"models", "tasks", "flows", "deployments"}


def test_custody_up_refuses_to_start_with_a_foreign_models_package(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), "CUSTODY_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", "custody", "up", "--no-prefect"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refused to start" in done.stdout and "models: found at" in done.stdout and "not custody's own" in done.stdout
    assert not (tmp_path / "home" / "custody.db").exists()  # nothing was started or created
