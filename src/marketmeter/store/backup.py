"""Backing up a database and restoring it, while servers keep serving it (backup).

- SQLite: the online backup API, in one step: it reads the database in one read
  transaction (WAL mode lets writers go on meanwhile), so the copy is the database as it
  was when the backup began — every record committed before, none after — and it cannot
  be restarted forever by a busy writer, as a backup in small steps would be. The copy is
  checked (`PRAGMA integrity_check`) before it takes the file's name. The usage rollups'
  file beside the database is not copied: it is derived from the records, and a restore
  removes it, to be filled again from the restored records when the store next opens.
- PostgreSQL: `pg_dump --format=custom` (a consistent snapshot too) and `pg_restore`,
  found on the PATH or beside `pg_config`'s.

Restore needs the servers stopped: it replaces the database.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from marketmeter.store.factory import UnsupportedDatabase, libpq_url, sqlite_path
from marketmeter.store.sqlite_rollups import rollups_path


class BackupError(Exception):
    """A backup or restore that could not be made: one line, for the command line."""


@dataclass(frozen=True)
class Copied:
    path: Path
    bytes: int
    seconds: float


def backup(database_url: str, to: Path) -> Copied:
    started = time.monotonic()
    to = to.resolve()
    if to.is_dir():
        raise BackupError(f"{to} is a directory: give the backup file's name")
    if not to.parent.is_dir():
        raise BackupError(f"no folder {to.parent} for the backup")
    scheme = urlsplit(database_url).scheme
    partial = to.with_name(to.name + ".partial")
    try:
        if scheme == "sqlite":
            _sqlite_backup(_existing(sqlite_path(database_url)), partial)
        elif scheme in ("postgresql", "postgres"):
            _run(
                _pg_tool("pg_dump"), "--format=custom", f"--file={partial}", libpq_url(database_url)
            )
        else:
            raise UnsupportedDatabase(f"unsupported database URL {database_url!r}")
        os.replace(partial, to)
    finally:
        partial.unlink(missing_ok=True)
    return Copied(to, to.stat().st_size, time.monotonic() - started)


def restore(source: Path, database_url: str, *, replace: bool) -> Copied:
    """The database at `database_url` becomes the backup `source`. Without `replace`, a
    database that holds anything is left alone (an error)."""
    started = time.monotonic()
    if not source.is_file():
        raise BackupError(f"no backup file {source}")
    scheme = urlsplit(database_url).scheme
    if scheme == "sqlite":
        target = Path(sqlite_path(database_url)).resolve()
        _check_sqlite_backup(source)
        if target.exists() and target.stat().st_size > 0 and not replace:
            raise BackupError(
                f"{target} exists: restoring replaces it — stop its servers and add --replace"
            )
        incoming = target.with_name(target.name + ".restoring")
        shutil.copyfile(source, incoming)
        rollups = rollups_path(str(target))
        # Of the database being replaced: its WAL, and its usage rollups (derived from its
        # records: filled again from the restored ones when the store next opens).
        for leftover in (f"{target}-wal", f"{target}-shm", *_with_wal(rollups)):
            Path(leftover).unlink(missing_ok=True)
        os.replace(incoming, target)
    elif scheme in ("postgresql", "postgres"):
        options = ["--clean", "--if-exists"] if replace else ["--exit-on-error"]
        _run(
            _pg_tool("pg_restore"),
            *options,
            "--no-owner",
            "--single-transaction",
            f"--dbname={libpq_url(database_url)}",
            str(source),
        )
    else:
        raise UnsupportedDatabase(f"unsupported database URL {database_url!r}")
    return Copied(source, source.stat().st_size, time.monotonic() - started)


def _with_wal(path: str) -> tuple[str, str, str]:
    return path, f"{path}-wal", f"{path}-shm"


def _existing(path: str) -> str:
    if not Path(path).is_file():
        raise BackupError(f"no database file {path}")
    return path


def _sqlite_backup(path: str, to: Path) -> None:
    to.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    copy = sqlite3.connect(to)
    try:
        source.backup(copy, pages=-1)  # one step: one read transaction, one snapshot
        copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    except sqlite3.Error as exc:
        raise BackupError(f"backing up {path}: {exc}") from None
    finally:
        copy.close()
        source.close()
    _check_sqlite_backup(to)


def _check_sqlite_backup(path: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            found = conn.execute("PRAGMA integrity_check").fetchall()
            conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{path} is not a marketmeter SQLite database: {exc}") from None
    if found != [("ok",)]:
        raise BackupError(f"{path} failed its integrity check: {found[:3]}")


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        try:
            bindir = subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            bindir = ""
        candidate = Path(bindir) / name
        if bindir and candidate.is_file():
            return str(candidate)
        raise BackupError(
            f"{name} is not installed: PostgreSQL's client tools (e.g. apt-get install "
            "postgresql-client) make and restore PostgreSQL backups"
        )
    return found


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise BackupError(f"{Path(command[0]).name} failed: {' '.join(detail[-3:])}")
