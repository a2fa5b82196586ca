"""A real, throwaway PostgreSQL server for the tests: `initdb` and `pg_ctl` in a temporary
directory (as the `postgres` user when the tests run as root), listening on 127.0.0.1.

`.ci/run` installs Debian's `postgresql` package, so CI always has one; elsewhere the
PostgreSQL tests are skipped, with the reason shown in pytest's summary.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg


def find_bindir() -> Path | None:
    """Where initdb and pg_ctl are: PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TemporaryPostgres:
    def __init__(
        self, bindir: Path, *, durable: bool = False, settings: dict[str, str] | None = None
    ) -> None:
        self.bindir = bindir
        self.durable = durable
        """PostgreSQL's defaults (fsync, full page writes); else both off, for speed."""
        self.settings = dict(settings or {})
        """More server settings (`-c name=value`), e.g. the benchmark's auto_explain."""
        self.root = Path(tempfile.mkdtemp(prefix="marketmeter-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "postgres"
        self._as_postgres = os.geteuid() == 0

    # -- running commands ----------------------------------------------------------------

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> None:
        if self._as_postgres:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            self.user,
            "--no-sync",
            "-E",
            "UTF8",
        )
        self.pg_ctl("start")

    def pg_ctl(self, action: str) -> None:
        """start or stop (fast: running transactions are rolled back, connections closed)."""
        if action == "start":
            options = (
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c max_connections=300 "
                "-c shared_preload_libraries=pg_stat_statements,auto_explain"
            )
            if not self.durable:
                options += " -c fsync=off -c full_page_writes=off"
            for name, value in self.settings.items():
                options += f" -c {name}={value}"
            self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.root / "server.log"),
                "-o",
                options,
                "-w",
                "start",
            )
        else:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def stop(self) -> None:
        self.pg_ctl("stop")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases -----------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "mm") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
