"""Configuration from the environment, with safe defaults for one machine.

CUSTODY_HOME          data folder (default: ./data beside the project)
CUSTODY_DATABASE_URL  application database (default: SQLite in the data folder);
                      postgresql://USER:PASSWORD@HOST/DATABASE for PostgreSQL
CUSTODY_PREFECT_DATABASE_URL  the Prefect server's database (default: SQLite under
                      PREFECT_HOME); postgresql://USER:PASSWORD@HOST/DATABASE
CUSTODY_POLICY        jurisdiction policy file (default: the shipped policy)
CUSTODY_SENDERS       bearer tokens of the systems that may send events
CUSTODY_HTTP_HOST / CUSTODY_HTTP_PORT   where `custody up` listens (loopback)
CUSTODY_PREFECT_PORT  the local Prefect server's port (default 4200; must agree with PREFECT_API_URL if both are set)
CUSTODY_APPRISE_CONFIG  recipients of notifications (default: apprise.yml in the data folder)
CUSTODY_INTAKE_LOCK_TIMEOUT  seconds an incoming event waits for another writer's lock
                      (default: 30 on SQLite, unbounded on PostgreSQL)
PREFECT_API_URL / PREFECT_HOME           respected when set; else the local server
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from custody.service.core import Sender
from models.events import EVENT_TYPES

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POLICY = Path(__file__).with_name("defaults") / "policy.toml"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    prefect_database_url: str | None
    policy_path: Path
    senders_path: Path
    http_host: str
    http_port: int
    prefect_port: int
    prefect_api_url: str
    prefect_home: Path
    apprise_config: Path
    intake_lock_timeout: float | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        home = Path(env.get("CUSTODY_HOME") or PROJECT_ROOT / "data").resolve()
        port = _port(env, "CUSTODY_HTTP_PORT", "8470")
        prefect_port, prefect_api_url = _prefect_address(env)
        return cls(
            home=home,
            database_url=_database_url(env, "CUSTODY_DATABASE_URL") or f"sqlite:///{home / 'custody.db'}",
            prefect_database_url=_prefect_database_url(env),
            policy_path=Path(env.get("CUSTODY_POLICY") or DEFAULT_POLICY),
            senders_path=Path(env.get("CUSTODY_SENDERS") or home / "senders.toml"),
            http_host=env.get("CUSTODY_HTTP_HOST", "127.0.0.1"),
            http_port=port,
            prefect_port=prefect_port,
            prefect_api_url=prefect_api_url,
            prefect_home=Path(env.get("PREFECT_HOME") or home / "prefect"),
            apprise_config=Path(env.get("CUSTODY_APPRISE_CONFIG") or home / "apprise.yml"),
            intake_lock_timeout=_intake_lock_timeout(env),
        )

    def prefect_env(self) -> dict[str, str]:
        """The Prefect settings every process of ours runs with (set before
        Prefect is imported, so the CLI, the server and the served flows agree)."""
        return {
            "PREFECT_HOME": str(self.prefect_home),
            "PREFECT_API_URL": self.prefect_api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LOG_PRINTS": "false",
            # A resumed case run starts within seconds, not the default ten.
            "PREFECT_RUNNER_POLL_FREQUENCY": os.environ.get("PREFECT_RUNNER_POLL_FREQUENCY", "3"),
            # No case run suspends with a timeout (flows/case.py), so the server's pause-expiration
            # service would only re-read every suspended run every 5 s: a cost per waiting case.
            "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED":
                os.environ.get("PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED", "false"),
            "CUSTODY_HOME": str(self.home),
            "CUSTODY_DATABASE_URL": self.database_url,
            "CUSTODY_POLICY": str(self.policy_path),
            "CUSTODY_APPRISE_CONFIG": str(self.apprise_config),
        } | ({"PREFECT_SERVER_DATABASE_CONNECTION_URL": self.prefect_database_url} if self.prefect_database_url else {})

    def apply_prefect_env(self) -> None:
        for key, value in self.prefect_env().items():
            os.environ.setdefault(key, value)


def _database_url(env: dict[str, str], name: str) -> str | None:
    text = env.get(name)
    if not text:
        return None
    try:
        backend = make_url(text).get_backend_name()
    except ArgumentError:
        raise ConfigError(f"{name}: not a database URL (sqlite:///PATH or postgresql://USER@HOST/DATABASE)") from None
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"{name}: {backend!r} is not supported (sqlite or postgresql)")
    return text


def _prefect_database_url(env: dict[str, str]) -> str | None:
    """The Prefect server takes PostgreSQL only through asyncpg; whichever
    postgresql URL is given, it gets that driver. SQLite stays Prefect's own default."""
    text = _database_url(env, "CUSTODY_PREFECT_DATABASE_URL")
    if text is None:
        return None
    url = make_url(text)
    if url.get_backend_name() != "postgresql":
        raise ConfigError("CUSTODY_PREFECT_DATABASE_URL: only PostgreSQL (postgresql://USER@HOST/DATABASE); "
                          "leave it unset for Prefect's own SQLite file")
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


MAX_LOCK_TIMEOUT = 600.0


def _intake_lock_timeout(env: dict[str, str]) -> float | None:
    """Seconds an incoming event waits for another writer's lock before it is
    refused as busy, with nothing stored (the endpoint answers 503 with
    Retry-After; `custody ingest` says to run the file again). Unset: 30 s on
    SQLite; on PostgreSQL as long as the lock is held, so one stuck session (an
    open psql transaction) would hold every sender's request open with it. Only
    intake: the backstop, the hold steps and the migrations wait as long as it
    takes, since giving up there would delay a release order."""
    text = env.get("CUSTODY_INTAKE_LOCK_TIMEOUT", "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
        if not 0.1 <= seconds <= MAX_LOCK_TIMEOUT:  # also refuses nan and inf
            raise ValueError
    except ValueError:
        raise ConfigError(f"CUSTODY_INTAKE_LOCK_TIMEOUT: {text!r} is not a number of seconds from 0.1 to {MAX_LOCK_TIMEOUT:g}") from None
    return seconds


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _prefect_address(env: dict[str, str]) -> tuple[int, str]:
    """One source of truth for where Prefect is: the local server's port and the
    API address every client is given. PREFECT_API_URL alone decides both (a
    loopback address names the local server's port); CUSTODY_PREFECT_PORT alone
    gives the local server's port; both set must agree."""
    url = env.get("PREFECT_API_URL") or ""
    if not url:
        port = _port(env, "CUSTODY_PREFECT_PORT", "4200")
        return port, f"http://127.0.0.1:{port}/api"
    try:
        parts = urlsplit(url)
        url_port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        url_port = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or url_port is None:
        raise ConfigError(f"PREFECT_API_URL: {url!r} is not an http(s) address such as http://127.0.0.1:4200/api")
    if "CUSTODY_PREFECT_PORT" in env:
        port = _port(env, "CUSTODY_PREFECT_PORT", "4200")
        if parts.hostname not in LOOPBACK or url_port != port:
            raise ConfigError(f"CUSTODY_PREFECT_PORT: {port} disagrees with PREFECT_API_URL ({url}); "
                              "set only one of them (PREFECT_API_URL names the server every part talks to)")
    return url_port, url


def prefect_is_local(settings: "Settings") -> bool:
    """Whether the Prefect API is the server `custody up` starts on this machine."""
    return urlsplit(settings.prefect_api_url).hostname in LOOPBACK


def _port(env: dict[str, str], name: str, default: str) -> int:
    text = env.get(name, default)
    try:
        port = int(text)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not a TCP port") from None
    return port


# --- the systems that send events, and their tokens ------------------------------------

# Who may send what (interface.md): the jail system cannot lift a detainer, ICE
# cannot release a person, and an officer's device can only report a service.
DEFAULT_SENDERS: dict[str, tuple[str, ...]] = {
    "jms": ("release.scheduled", "release.authorized", "inmate.released", "custody.transferred"),
    "ice": ("detainer.received", "detainer.lifted", "notice.acknowledged"),
    "records": ("detainer.received", "detainer.copy_served", "detainer.lifted", "notice.acknowledged"),
    "wso": ("warrant.served",),
    "release-desk": ("inmate.released", "custody.transferred"),
}


@dataclass(frozen=True)
class TokenEntry:
    sender: Sender
    token_sha256: bytes


class SenderRegistry:
    def __init__(self, entries: list[TokenEntry]):
        self.entries = entries

    def authenticate(self, token: str | None) -> Sender | None:
        if not token:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for entry in self.entries:  # compare against every entry: constant time
            if hmac.compare_digest(digest, entry.token_sha256):
                found = entry.sender
        return found


def load_senders(path: Path) -> SenderRegistry:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"senders: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"senders: {path} is not valid TOML: {exc}") from None
    rows = data.get("sender")
    if not isinstance(rows, list) or not rows:
        raise ConfigError(f"senders: {path} has no [[sender]] entries")
    entries, names, digests = [], set(), set()
    for i, row in enumerate(rows):
        where = f"senders: sender[{i}]"
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: must be a table")
        unknown = set(row) - {"name", "token", "token_sha256", "events"}
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown setting")
        name = row.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}.name: required")
        if name in names:
            raise ConfigError(f"{where}.name: {name!r} appears twice")
        events = row.get("events")
        if not isinstance(events, list) or not events or any(e not in EVENT_TYPES for e in events):
            raise ConfigError(f"{where}.events: a list of event types from: {', '.join(EVENT_TYPES)}")
        if "token" in row:
            token = row["token"]
            if not isinstance(token, str) or len(token) < 24:
                raise ConfigError(f"{where}.token: must be a string of at least 24 characters")
            digest = hashlib.sha256(token.encode()).digest()
        elif "token_sha256" in row:
            try:
                digest = bytes.fromhex(row["token_sha256"])
                assert len(digest) == 32
            except Exception:
                raise ConfigError(f"{where}.token_sha256: must be 64 hexadecimal digits") from None
        else:
            raise ConfigError(f"{where}.token: required (or token_sha256)")
        if digest in digests:
            raise ConfigError(f"{where}.token: the same token is given to two senders")
        names.add(name)
        digests.add(digest)
        entries.append(TokenEntry(Sender(name, frozenset(events)), digest))
    return SenderRegistry(entries)


def write_default_senders(path: Path) -> dict[str, str]:
    """First start: one random token per standard sender, readable only by us."""
    tokens = {name: secrets.token_urlsafe(32) for name in DEFAULT_SENDERS}
    lines = ["# Bearer tokens for POST /events, one per sending system. Give each system",
             "# only its own token; replace a token with token_sha256 = \"<hex>\" to keep",
             "# only its hash here.", ""]
    for name, events in DEFAULT_SENDERS.items():
        lines += ["[[sender]]", f'name = "{name}"', f'token = "{tokens[name]}"',
                  "events = [" + ", ".join(f'"{e}"' for e in events) + "]", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return tokens
