"""A private PostgreSQL cluster for the benchmarks: Debian's binaries, a data
folder under /tmp, a loopback port nobody else uses, stopped at the end.

PostgreSQL refuses to run as root, so as root the cluster belongs to the
`postgres` system user. Durability is left at PostgreSQL's defaults (fsync on,
synchronous_commit on): the figures are for a database that keeps what it
acknowledged."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, root: Path, port: int | None = None):
        self.root = Path(root)
        self.data = self.root / "data"
        self.port = port or free_port()
        self.bindir = pg_bindir()
        self.started = False

    @property
    def available(self) -> bool:
        return self.bindir is not None

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def start(self) -> None:
        if self.data.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        made = subprocess.run(self._as_owner([str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                                              "--no-sync", "-E", "UTF8"]), capture_output=True, text=True)
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stderr.strip()[-500:]}")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} -c max_connections=200"
        if (self.bindir.parent / "lib" / "pg_stat_statements.so").exists():  # the server's own time per statement (bench/sweep.py)
            options += " -c shared_preload_libraries=pg_stat_statements"
        # The database server is part of the system measured (ours and the peer alike): same priority as they.
        from bench.common import MEASURED_NICE, may_raise_priority
        nice = ["nice", "-n", str(MEASURED_NICE)] if may_raise_priority() else []
        subprocess.run(nice + self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                                              "-o", options, "-w", "start"]), check=True, capture_output=True)
        self.started = True

    def stop(self) -> None:
        if self.started:
            subprocess.run(self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                           capture_output=True)
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def fresh_database(self, name: str) -> str:
        """A new empty database; the SQLAlchemy URL (psycopg 3) of it."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def postmaster_pid(self) -> int | None:
        """The cluster's server process (its backends are its children)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def version(self) -> str:
        out = subprocess.run([str(self.bindir / "postgres"), "--version"], capture_output=True, text=True)
        return out.stdout.strip()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("PostgreSQL did not start")
