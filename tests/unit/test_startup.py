"""custody up says at once what stops it, naming the variable to change:
a port in use, a Prefect address given two ways, a Prefect elsewhere."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from custody.config import ConfigError, Settings, prefect_is_local
from custody.startup import port_in_use, refusals


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"CUSTODY_HOME": str(tmp_path), **env})


@pytest.fixture
def held_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_prefect_address_has_one_source_of_truth(tmp_path):
    assert settings(tmp_path).prefect_api_url == "http://127.0.0.1:4200/api"
    by_port = settings(tmp_path, CUSTODY_PREFECT_PORT="4391")
    assert (by_port.prefect_port, by_port.prefect_api_url) == (4391, "http://127.0.0.1:4391/api")
    by_url = settings(tmp_path, PREFECT_API_URL="http://localhost:4391/api")
    assert (by_url.prefect_port, by_url.prefect_api_url) == (4391, "http://localhost:4391/api")  # the server starts where clients look
    both = settings(tmp_path, PREFECT_API_URL="http://127.0.0.1:4391/api", CUSTODY_PREFECT_PORT="4391")
    assert both.prefect_port == 4391 and prefect_is_local(both)
    assert not prefect_is_local(settings(tmp_path, PREFECT_API_URL="http://prefect-host:4200/api"))


@pytest.mark.parametrize("env, field", [
    ({"PREFECT_API_URL": "http://127.0.0.1:4200/api", "CUSTODY_PREFECT_PORT": "4391"}, "CUSTODY_PREFECT_PORT: 4391 disagrees with PREFECT_API_URL"),
    ({"PREFECT_API_URL": "http://prefect-host:4391/api", "CUSTODY_PREFECT_PORT": "4391"}, "CUSTODY_PREFECT_PORT: 4391 disagrees"),
    ({"PREFECT_API_URL": "prefect-host:4200"}, "PREFECT_API_URL: 'prefect-host:4200' is not an http(s) address"),
    ({"PREFECT_API_URL": "http://127.0.0.1:99999/api"}, "PREFECT_API_URL:"),
    ({"CUSTODY_PREFECT_PORT": "http"}, "CUSTODY_PREFECT_PORT: 'http' is not a TCP port"),
])
def test_a_prefect_address_given_two_ways_or_malformed_is_refused_naming_it(tmp_path, env, field):
    with pytest.raises(ConfigError) as refused:
        settings(tmp_path, **env)
    assert str(refused.value).startswith(field)


def test_a_port_in_use_is_named_with_its_variable(tmp_path, held_port):
    assert port_in_use("127.0.0.1", held_port) == "already in use"
    free = free_port()
    assert port_in_use("127.0.0.1", free) is None
    endpoint = refusals(settings(tmp_path, CUSTODY_PREFECT_PORT=str(free)), "127.0.0.1", held_port, with_prefect=True)
    assert len(endpoint) == 1 and f"port {held_port} on 127.0.0.1 is already in use (CUSTODY_HTTP_PORT" in endpoint[0]
    prefect = refusals(settings(tmp_path, CUSTODY_PREFECT_PORT=str(held_port)), "127.0.0.1", free, with_prefect=True)
    assert len(prefect) == 1 and f"port {held_port} is already in use (CUSTODY_PREFECT_PORT)" in prefect[0]
    # Without the local Prefect server its port is nobody's business.
    assert refusals(settings(tmp_path, CUSTODY_PREFECT_PORT=str(held_port)), "127.0.0.1", free, with_prefect=False) == []


def test_a_prefect_elsewhere_needs_no_prefect(tmp_path):
    remote = settings(tmp_path, PREFECT_API_URL="http://prefect-host:4200/api")
    free = free_port()
    said = refusals(remote, "127.0.0.1", free, with_prefect=True)
    assert len(said) == 1 and said[0].startswith("PREFECT_API_URL (http://prefect-host:4200/api) names a Prefect server on another machine")
    assert refusals(remote, "127.0.0.1", free, with_prefect=False) == []


def test_custody_up_refuses_at_once_and_starts_nothing(tmp_path, held_port):
    import os
    import subprocess
    import sys

    env = {**os.environ, "CUSTODY_HOME": str(tmp_path / "home"), "CUSTODY_PREFECT_PORT": str(held_port),
           "CUSTODY_HTTP_PORT": str(free_port())}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, "-m", "custody", "up"], capture_output=True, text=True, env=env, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"port {held_port} is already in use (CUSTODY_PREFECT_PORT)" in done.stdout
    assert "restarting" not in done.stdout + done.stderr
    assert not (tmp_path / "home" / "custody.db").exists()
