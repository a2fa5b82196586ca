"""The embedded store: SQLite in WAL mode.

One writer connection runs every transaction with `BEGIN IMMEDIATE`. Writers take turns on
a lock — this process's threads on a `threading.Lock`, processes (server workers, the CLI)
on a `flock` of a file beside the database — given up after the busy timeout, so that no
writer waits for ever. Reads use one connection per thread. A commit returns only once
SQLite has it in the WAL, so a reply sent after it survives a crash of the process
(`synchronous=NORMAL`; `FULL` also survives a power cut, at the cost of an fsync per
commit).

Group commit: on a server's event loop (`group_commit_on`), `run` queues units of work
(the claims of a prepared request), and the next loop iteration runs every queued unit in
one transaction — each in a savepoint of its own, so a failing unit rolls back alone —
commits once and answers them all. A commit is most of the cost of a small unit, and the
write lock is held only while units run, not while requests are read and checked.
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
from marketmeter.store.sql import (
    SqlReader,
    SqlTransaction,
    migrate,
    record_from_row,
    records_query,
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
        self._queue: list[tuple[Callable[[Transaction], Any], asyncio.Future[Any]]] = []
        with translate_errors():
            # The lock beside the database, named from its real path: one file per database.
            lock_path = os.path.realpath(self.path) + ".lock"
            try:
                self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreUnavailable(f"SQLite: cannot open {lock_path}: {exc.strerror}") from exc
            self._close_lock = weakref.finalize(self, os.close, self._lock_fd)
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
            migrate(SqliteRunner(conn), "sqlite")
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
        """From now on `run` queues units of work, and the next iteration of `loop` runs
        every queued unit in one transaction (group commit)."""
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
        self._queue.append((unit, future))
        if len(self._queue) == 1:
            self._loop.call_soon(self._run_queued)
        return await future  # type: ignore[no-any-return]

    def _run_queued(self) -> None:
        """On the event loop: the units queued during the last iteration, as one group.
        (A writer thread was measured: the GIL's hand-offs between it and the loop cost far
        more than letting SQLite's work overlap the loop's gains.)"""
        group, self._queue = self._queue, []
        _answer(self._run_group(group))

    def _run_group(
        self, group: list[tuple[Callable[[Transaction], Any], asyncio.Future[Any]]]
    ) -> list[tuple[asyncio.Future[Any], Any, bool]]:
        """Every unit in one transaction, each in a savepoint of its own; then commit. A
        unit's own error is answered only after the commit too: it may rest on rows of
        this group. If the group fails, every unit gets a retryable error."""
        answers: list[tuple[asyncio.Future[Any], Any, bool]] = []
        try:
            with self._exclusive(), translate_errors():
                conn = self._writer
                runner = SqliteRunner(conn)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for unit, future in group:
                        conn.execute("SAVEPOINT unit")
                        try:
                            answers.append((future, unit(SqlTransaction(runner)), True))
                        except Exception as exc:
                            if not conn.in_transaction:  # an I/O error undid the whole group
                                raise
                            conn.execute("ROLLBACK TO unit")
                            answers.append((future, exc, False))
                        conn.execute("RELEASE unit")
                    conn.execute("COMMIT")
                finally:
                    _end_transaction(conn)
        except BaseException as exc:
            failure = (
                exc
                if isinstance(exc, StoreUnavailable | StoreConflict)
                else StoreUnavailable(f"SQLite: {exc!r}")
            )
            return [(future, failure, False) for _, future in group]
        return answers

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One writer at a time: this process's threads queue on a lock; processes on a
        lock of the kernel's (`flock` on the file beside the database), given up after the
        busy timeout — a writer never waits for ever."""
        with self._write_lock:
            self._lock_file()
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _lock_file(self) -> None:
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        # Another process writes. Wait in the kernel — woken the moment the lock is free,
        # which keeps processes taking fair turns — on a helper thread, so that the wait
        # can end at the busy timeout.
        acquired = threading.Event()
        given_up = False
        decided = threading.Lock()

        def wait_for_lock() -> None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            with decided:
                if given_up:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                else:
                    acquired.set()

        threading.Thread(target=wait_for_lock, name="sqlite-lock", daemon=True).start()
        if acquired.wait(self._busy_timeout_ms / 1000):
            return
        with decided:
            if acquired.is_set():
                return
            given_up = True
        raise StoreUnavailable(
            f"SQLite: another process has held the write lock for more than "
            f"{self._busy_timeout_ms} ms"
        )

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


def _answer(answers: list[tuple[asyncio.Future[Any], Any, bool]]) -> None:
    """On the event loop: each waiting request gets its unit's result or error."""
    for future, value, ok in answers:
        if future.done():  # the request went away meanwhile
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


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
