"""Who may reach the event endpoint, and with what: `custody up` with the
sender tokens it makes on first start. Every token sends only its own event
types; nothing answers without a valid token; the endpoint listens on loopback."""
from __future__ import annotations

import os
import socket
import tomllib
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from custody.config import DEFAULT_SENDERS, Settings, load_senders
from custody.http import create_app
from custody.store.db import make_engine
from models.events import EVENT_TYPES
from tests.builders import (
    copy_event,
    detainer_event,
    iso,
    lift_event,
    release_event,
    released_event,
    scheduled_event,
    service_event,
    transfer_event,
)
from tests.databases import database_url
from tests.integration.endpoint import custody_up, settled
from tests.integration.helpers import snapshot

pytestmark = pytest.mark.slow

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    home = tmp_path_factory.mktemp("access")
    with custody_up(home, "--no-prefect") as up:  # no senders file: custody up makes one, as on a first start
        config = tomllib.loads((home / "senders.toml").read_text())
        up["tokens"] = {row["name"]: row["token"] for row in config["sender"]}
        up["allowed"] = {row["name"]: set(row["events"]) for row in config["sender"]}
        up["engine"] = make_engine(database_url(home))
        yield up
        up["engine"].dispose()


def event_of(kind: str, n: str) -> dict:
    """A valid event of each type, about a booking of its own."""
    t = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)
    booking = f"AC-{n}"
    return {
        "detainer.received": lambda: detainer_event(f"{n}-e", booking, t, a_number=f"A6{abs(hash(n)) % 10**8:08d}"),
        "detainer.copy_served": lambda: copy_event(f"{n}-e", booking, t),
        "release.scheduled": lambda: scheduled_event(f"{n}-e", booking, t, t + timedelta(days=2)),
        "release.authorized": lambda: release_event(f"{n}-e", booking, t),
        "warrant.served": lambda: service_event(f"{n}-e", booking, t, badge="W-1024"),
        "custody.transferred": lambda: transfer_event(f"{n}-e", booking, t),
        "detainer.lifted": lambda: lift_event(f"{n}-e", booking, t),
        "inmate.released": lambda: released_event(f"{n}-e", booking, t),
        "notice.acknowledged": lambda: {"event_id": f"{n}-e", "type": "notice.acknowledged", "occurred_at": iso(t),
                                        "booking_number": booking, "notice": "release-notice", "acknowledged_by": "ERO K"},
    }[kind]()


def test_the_first_start_gives_each_standard_sender_its_own_token_and_types(system):
    assert system["allowed"] == {name: set(types) for name, types in DEFAULT_SENDERS.items()}
    assert len(set(system["tokens"].values())) == len(DEFAULT_SENDERS)
    assert set().union(*system["allowed"].values()) == set(EVENT_TYPES)  # every type has a sender


@pytest.mark.parametrize("kind", EVENT_TYPES)
@pytest.mark.parametrize("sender", list(DEFAULT_SENDERS))
def test_every_token_sends_only_its_own_event_types(system, sender, kind):
    event = event_of(kind, f"{sender}-{kind}")
    before = settled(lambda: snapshot(system["engine"]))
    response = httpx.post(f"{system['base']}/events", json=event, timeout=30,
                          headers={"Authorization": f"Bearer {system['tokens'][sender]}"})
    if kind in system["allowed"][sender]:
        assert response.status_code == 201 and response.json()["result"] == "accepted", response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["reason"] == f"type: sender {sender!r} may not send {kind!r} events"
        assert snapshot(system["engine"]) == before


@pytest.mark.parametrize("sender", list(DEFAULT_SENDERS))
def test_inside_a_batch_too_each_event_is_checked_against_its_sender(system, sender):
    batch = [event_of(kind, f"batch-{sender}-{kind}") for kind in EVENT_TYPES]
    response = httpx.post(f"{system['base']}/events", json=batch, timeout=30,
                          headers={"Authorization": f"Bearer {system['tokens'][sender]}"})
    assert response.status_code == 200
    got = {kind: r for kind, r in zip(EVENT_TYPES, response.json()["results"])}
    for kind, result in got.items():
        if kind in system["allowed"][sender]:
            assert result["result"] == "accepted", (kind, result)
        else:
            assert result["result"] == "rejected" and result["reason"].startswith("type: sender"), (kind, result)


def routes_of_the_app(tmp_path) -> list[tuple[str, str]]:
    """Every path and method the endpoint's app serves, read from the app itself,
    so a route added later is covered without touching this test."""
    from custody.config import write_default_senders
    from custody.wiring import build_core
    settings = Settings.from_env({"CUSTODY_HOME": str(tmp_path)})
    write_default_senders(settings.senders_path)
    core = build_core(settings)
    try:
        app = create_app(core, load_senders(settings.senders_path))
        found = [(route.path, method) for route in app.routes for method in sorted(getattr(route, "methods", None) or [])]
    finally:
        core.engine.dispose()
    assert {("/events", "POST"), ("/health", "GET"), ("/openapi.json", "GET")} <= set(found), found
    return found


def test_nothing_answers_without_a_valid_token(system, tmp_path):
    paths = {path for path, _ in routes_of_the_app(tmp_path)}
    paths |= {"/", "/docs", "/redoc", "/docs/oauth2-redirect", "/health/", "/events/", "/EVENTS", "//events",
              "/nope", "/%2e%2e/%2e%2e/etc/passwd", "/events?token=" + system["tokens"]["ice"]}
    ice = system["tokens"]["ice"]
    credentials = [None, "", "Bearer", "bearer  x", "Bearer not-a-token-0123456789abcdefghij", f"Basic {ice}",
                   f"Token {ice}", f"Bearer {ice}x", f"Bearer {ice[:-1]}", ice]
    before = settled(lambda: snapshot(system["engine"]))
    with httpx.Client(base_url=system["base"], timeout=10) as client:
        for path in sorted(paths):
            for method in METHODS:
                for credential in credentials:
                    headers = {"Content-Type": "application/json"}
                    if credential is not None:
                        headers["Authorization"] = credential
                    response = client.request(method, path, headers=headers, content=b'{"type": "detainer.lifted"}')
                    assert response.status_code == 401, (method, path, credential, response.status_code)
                    assert response.headers["www-authenticate"] == "Bearer"
                    if method != "HEAD":
                        assert response.json() == {"error": "authorization: a valid bearer token is required"}
        # With a token: the interactive docs are not served at all, the schema and health are.
        auth = {"Authorization": f"Bearer {ice}"}
        assert client.get("/docs", headers=auth).status_code == 404
        assert client.get("/redoc", headers=auth).status_code == 404
        assert client.get("/openapi.json", headers=auth).status_code == 200
        assert client.get("/health", headers=auth).json()["status"] == "ok"
    assert snapshot(system["engine"]) == before


def listening_sockets(pids: set[int] | None = None) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets listening, from the kernel's own
    tables; only those held open by `pids` when given."""
    inodes = None
    if pids is not None:
        inodes = set()
        for pid in pids:
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
            except OSError:
                continue
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] != "0A" or (inodes is not None and fields[9] not in inodes):  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # each 32-bit word is little-endian
            found.add((socket.inet_ntop(family, raw), int(hex_port, 16)))
    return found


def process_tree(root: int) -> set[int]:
    children: dict[int, set[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, set()).add(int(entry))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, set()) - tree
    return tree


LOOPBACK = {"127.0.0.1", "::1"}


def own_outside_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_the_endpoint_listens_on_loopback_only_by_default(system):
    assert Settings.from_env({}).http_host == "127.0.0.1"
    assert "CUSTODY_HTTP_HOST" not in system["env"]
    assert {address for address, port in listening_sockets() if port == system["port"]} == {"127.0.0.1"}
    # ... and so is every socket that `custody up` and its children listen on.
    mine = listening_sockets(process_tree(system["process"].pid))
    assert (("127.0.0.1", system["port"]) in mine) and {address for address, _ in mine} <= LOOPBACK, mine
    outside = own_outside_address()
    if outside is not None:  # this machine has another address: the endpoint is not on it
        with pytest.raises(OSError):
            socket.create_connection((outside, system["port"]), timeout=2).close()
