"""The embedded store: SQLite in WAL mode.

One writer connection, behind a lock, runs every transaction with `BEGIN IMMEDIATE`, so
writers of this process queue in Python rather than spin on SQLite's busy handler; other
processes (a CLI command, another server process) wait up to the busy timeout. Reads use
one connection per thread. A commit returns only once SQLite has it in the WAL, so a reply
sent after it survives a crash of the process (`synchronous=NORMAL`; `FULL` also survives a
power cut, at the cost of an fsync per commit).

Group commit: on a server's event loop (`group_commit_on`), `run` queues units of work
(the claims of a prepared request) and the next loop iteration runs every queued unit in
one transaction — each in a savepoint of its own, so a failing unit rolls back alone — then
commits once and answers them all. A commit is most of the cost of a small unit, and the
write lock is held only while the units run, not while requests are read and checked.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from marketmeter.domain.models import MeteringRecord
from marketmeter.store.base import StoreConflict, StoreUnavailable, Transaction
from marketmeter.store.migrations import migrations_for
from marketmeter.store.sql import (
    SqlReader,
    SqlTransaction,
    record_from_row,
    records_query,
    statements,
)

T = TypeVar("T")


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
        self._pending: list[tuple[Callable[[Transaction], Any], asyncio.Future[Any]]] = []
        self._lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        self._close_lock = weakref.finalize(self, os.close, self._lock_fd)
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
        with self._exclusive():
            self._migrate_locked()

    def _migrate_locked(self) -> None:
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
        self._close_lock()

    # -- units of work -----------------------------------------------------------------

    def group_commit_on(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on, `run` groups the units of work of one iteration of `loop` into one
        transaction (the loop's thread is the only one that writes)."""
        self._loop = loop

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        with self._exclusive(), translate_errors():
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield SqlTransaction(SqliteRunner(conn))
                conn.execute("COMMIT")
            finally:
                _end_transaction(conn)

    async def run(self, unit: Callable[[Transaction], T]) -> T:
        if self._loop is None:
            with self.transaction() as tx:
                return unit(tx)
        future: asyncio.Future[Any] = self._loop.create_future()
        self._pending.append((unit, future))
        if len(self._pending) == 1:
            self._loop.call_soon(self._flush)
        return await future  # type: ignore[no-any-return]

    def _flush(self) -> None:
        """Run the waiting units in one transaction, each in a savepoint of its own; then
        answer them all — a unit's own error too, since it may rest on rows of this group."""
        pending, self._pending = self._pending, []
        outcomes: list[tuple[asyncio.Future[Any], Any, bool]] = []
        try:
            with self._exclusive(), translate_errors():
                conn = self._writer
                runner = SqliteRunner(conn)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for unit, future in pending:
                        conn.execute("SAVEPOINT unit")
                        try:
                            outcomes.append((future, unit(SqlTransaction(runner)), True))
                        except Exception as exc:
                            if not conn.in_transaction:  # an I/O error undid the whole group
                                raise
                            conn.execute("ROLLBACK TO unit")
                            outcomes.append((future, exc, False))
                        conn.execute("RELEASE unit")
                    conn.execute("COMMIT")
                finally:
                    _end_transaction(conn)
        except Exception as exc:
            failure = exc if isinstance(exc, StoreUnavailable | StoreConflict) else None
            for _, future in pending:
                if not future.done():
                    future.set_exception(failure or StoreUnavailable(f"SQLite: {exc}"))
            return
        for future, value, ok in outcomes:
            if future.done():  # the request went away meanwhile
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """This process's writers queue on a lock; processes, on a lock of the kernel's
        (`flock` on a file beside the database): a waiting process sleeps until the lock is
        free, rather than polling SQLite's busy handler."""
        with self._write_lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

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


@contextmanager
def translate_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise StoreConflict(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(f"SQLite: {exc}") from exc
