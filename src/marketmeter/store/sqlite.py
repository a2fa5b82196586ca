"""The embedded store: SQLite in WAL mode.

One writer connection, behind a lock, runs every transaction with `BEGIN IMMEDIATE`, so
writers of this process queue in Python rather than spin on SQLite's busy handler; other
processes (a CLI command, another server process) wait up to the busy timeout. Reads use
one connection per thread. A commit returns only once SQLite has it in the WAL, so a reply
sent after it survives a crash of the process (`synchronous=NORMAL`; `FULL` also survives a
power cut, at the cost of an fsync per commit).

Group commit: on a server's event loop (`group_commit_on`), the units of work of one loop
iteration share one transaction — each in a savepoint of its own, so a failing unit rolls
back alone — committed at the start of the next iteration; `durable()` is how a request
waits for that commit before it answers. A commit is most of the cost of a small unit.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from marketmeter.domain.models import MeteringRecord
from marketmeter.store.base import StoreConflict, StoreUnavailable
from marketmeter.store.migrations import migrations_for
from marketmeter.store.sql import (
    SqlReader,
    SqlTransaction,
    record_from_row,
    records_query,
    statements,
)


class SqliteRunner:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def fetchone(self, sql: str, params: tuple[Any, ...] | list[Any]) -> Any:
        with translate_errors():
            return self._conn.execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: tuple[Any, ...] | list[Any]) -> list[Any]:
        with translate_errors():
            return self._conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any]) -> int:
        with translate_errors():
            return self._conn.execute(sql, params).rowcount


class SqliteStore(SqlReader):
    run_inline = True
    """Calls are short local file operations: the endpoint makes them on its event loop."""

    def __init__(
        self, path: str | Path, *, busy_timeout_ms: int = 5000, synchronous: str = "NORMAL"
    ) -> None:
        self.path = str(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = synchronous
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections_lock = threading.Lock()
        self._all_connections: list[sqlite3.Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._group: asyncio.Future[None] | None = None
        with translate_errors():
            self._writer = self._connect()
            self._migrate()

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: the hot indexes stay in memory
        with self._connections_lock:
            self._all_connections.append(conn)
        return conn

    def _runner(self) -> SqliteRunner:
        runner: SqliteRunner | None = getattr(self._local, "runner", None)
        if runner is None:
            with translate_errors():
                runner = SqliteRunner(self._connect())
            self._local.runner = runner
        return runner

    def _migrate(self) -> None:
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
            )
            applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in migrations_for("sqlite"):
                if migration.version in applied:
                    continue
                for statement in statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                    (migration.version, migration.name),
                )
            conn.execute("COMMIT")
        finally:
            _end_transaction(conn)

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._all_connections:
                conn.close()
            self._all_connections.clear()

    # -- units of work -----------------------------------------------------------------

    def group_commit_on(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on, every transaction runs on `loop`'s thread and commits in groups."""
        self._loop = loop

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        if self._loop is not None:
            with self._grouped_unit() as tx:
                yield tx
            return
        with self._write_lock, translate_errors():
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield SqlTransaction(SqliteRunner(conn))
                conn.execute("COMMIT")
            finally:
                _end_transaction(conn)

    @contextmanager
    def _grouped_unit(self) -> Iterator[SqlTransaction]:
        assert self._loop is not None
        conn = self._writer
        with translate_errors():
            if self._group is None:
                conn.execute("BEGIN IMMEDIATE")
                self._group = self._loop.create_future()
                self._group.add_done_callback(_consume_exception)
                self._loop.call_soon(self._commit_group)
            conn.execute("SAVEPOINT unit")
            try:
                yield SqlTransaction(SqliteRunner(conn))
            except BaseException:
                if conn.in_transaction:  # (an I/O error may have rolled back everything)
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                raise
            conn.execute("RELEASE unit")

    def _commit_group(self) -> None:
        group, self._group = self._group, None
        if group is None:
            return
        try:
            with translate_errors():
                try:
                    self._writer.execute("COMMIT")
                finally:
                    _end_transaction(self._writer)
        except StoreUnavailable as exc:
            group.set_exception(exc)
        else:
            group.set_result(None)

    async def durable(self) -> None:
        if self._group is not None:
            await asyncio.shield(self._group)

    # -- whole-table reads -------------------------------------------------------------

    def iter_records(self, product_code: str | None = None) -> Iterator[MeteringRecord]:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000)
        try:
            sql, params = records_query(product_code)
            with translate_errors():
                for row in conn.execute(sql, params):
                    yield record_from_row(row)
        finally:
            conn.close()


def _end_transaction(conn: sqlite3.Connection) -> None:
    """After a commit, nothing to do; after a failure (even of COMMIT itself, which SQLite
    may leave open), roll back, so that the connection can begin the next transaction."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _consume_exception(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # reported to the waiters; no "never retrieved" warning


@contextmanager
def translate_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise StoreConflict(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(f"SQLite: {exc}") from exc
