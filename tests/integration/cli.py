"""Running the real `custody` command in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.databases import ON_POSTGRES, database_url

ROOT = Path(__file__).resolve().parents[2]


def custody_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a `custody` process whose data lives in `home`: its
    database is the SQLite default there, or on the PostgreSQL pass the test
    database that tests.databases maps to `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    env.update(CUSTODY_HOME=str(home), PYTHONUNBUFFERED="1")
    if ON_POSTGRES:
        env["CUSTODY_DATABASE_URL"] = database_url(home)
    env.update(extra)
    return env


def custody(env: dict[str, str], *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "custody", *args], input=stdin, capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"custody {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def custody_json(env: dict[str, str], *args: str):
    return json.loads(custody(env, *args, "--json").stdout)


def jsonl(*events: dict) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)
