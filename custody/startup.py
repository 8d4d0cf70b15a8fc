"""What `custody up` checks before it starts anything, each said at once with
the variable to change: custody's own packages, a port another program holds,
and where Prefect is."""
from __future__ import annotations

import errno
import socket
import urllib.request

from custody.config import Settings, prefect_is_local
from custody.installation import foreign_packages


def refusals(settings: Settings, host: str, port: int, with_prefect: bool) -> list[str]:
    """Why `custody up` must not start (empty: it may)."""
    found = foreign_packages()
    if found:
        return ["these packages are not custody's own (install custody into an environment of its own): "
                + "; ".join(found)]
    problems = []
    held = port_in_use(host, port)
    if held:
        problems.append(f"the event endpoint's port {port} on {host} is {held} (CUSTODY_HTTP_PORT, CUSTODY_HTTP_HOST): "
                        "stop the program that holds it (perhaps another custody up) or choose another port")
    if with_prefect and not prefect_is_local(settings):
        problems.append(f"PREFECT_API_URL ({settings.prefect_api_url}) names a Prefect server on another machine: "
                        "start with --no-prefect to use it, or unset PREFECT_API_URL for the server custody up starts here")
    elif with_prefect:
        held = port_in_use("127.0.0.1", settings.prefect_port)
        if held:
            who = (" by a Prefect server (perhaps one a custody up left behind: stop it)"
                   if answers_as_prefect(settings.prefect_api_url) else "")
            problems.append(f"the Prefect server's port {settings.prefect_port} is {held}{who} (CUSTODY_PREFECT_PORT): "
                            "free it or set CUSTODY_PREFECT_PORT to a free port")
    return problems


def port_in_use(host: str, port: int) -> str | None:
    """None if a server could listen on host:port now; else what stops it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and Prefect's server listen
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "already in use"
            return f"not available ({exc.strerror or exc})"
    return None


def answers_as_prefect(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False
