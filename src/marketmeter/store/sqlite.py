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

The usage rollups live in a file of their own (`store.sqlite_rollups`), and the usage log
is folded into them without the records' write lock: under group commit after a group's
commit, on a thread of the store's (`BackgroundFolds`), as PostgreSQL's store does —
SQLite runs the fold's statements without the GIL, beside the loop's checks of the next
requests; otherwise after the transaction that made one due.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import mmap
import os
import sqlite3
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from marketmeter import metrics
from marketmeter.domain.models import MeteringRecord
from marketmeter.domain.ports import CatalogChange, StoreConflict, StoreUnavailable, Transaction
from marketmeter.store.groups import (
    BackgroundFolds,
    Outcome,
    Queued,
    Unit,
    answer,
    failed_group,
)
from marketmeter.store.sql import (
    FoldSchedule,
    OutboxStore,
    SqlReader,
    SqlTransaction,
    add_usage,
    migrate,
    record_from_row,
    records_query,
)
from marketmeter.store.sql.changes import SAFETY_INTERVAL, LogWatch, current_version, publish
from marketmeter.store.sql.runner import Dialect, rows_select
from marketmeter.store.sql.usage import FOLD_LIMIT, FoldMarks
from marketmeter.store.sqlite_rollups import RollupsFile, attach, read_marks

T = TypeVar("T")
log = logging.getLogger("marketmeter.store")

CHECKPOINT_INTERVAL = 0.05
"""Seconds between a server process's checkpoints of the WAL (off its write path)."""
WRITER_CHECKPOINT_PAGES = 16_384
"""With a checkpointer, the writer checkpoints only past this WAL size (64 MiB at 4 KiB
pages): the checkpointer fell behind, or stopped."""


class SqliteRunner:
    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    def fetchone(self, sql: str, params: tuple[Any, ...] | list[Any]) -> Any:
        with translate_errors():
            return self._conn.execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: tuple[Any, ...] | list[Any]) -> list[Any]:
        with translate_errors():
            return self._conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any]) -> int:
        with translate_errors():
            return self._conn.execute(sql, params).rowcount

    def select_rows(
        self, types: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> tuple[str, list[Any]]:
        return rows_select(self.dialect, types, rows)


class SqliteStore(SqlReader, OutboxStore):
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
        self._queue: list[Queued] = []
        self.folds = FoldSchedule()
        self._checkpointer: _Checkpointer | None = None
        self._folds: BackgroundFolds | None = None
        self._log_deleted = 0  # the usage log's rows up to here are deleted
        with translate_errors():
            # The lock beside the database, named from its real path: one file per database.
            lock_path = os.path.realpath(self.path) + ".lock"
            try:
                self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreUnavailable(f"SQLite: cannot open {lock_path}: {exc.strerror}") from exc
            self._close_lock = weakref.finalize(self, os.close, self._lock_fd)
            self._announced = _SharedVersion(self._lock_fd)
            self._watches: weakref.WeakSet[_SqliteWatch] = weakref.WeakSet()
            # Processes opening the database together take turns: switching a new file to
            # WAL is refused ("locked") rather than waited for while another connects.
            with self._exclusive():
                self._writer = self._connect()
                self._migrate()
                self._rollups = RollupsFile(
                    self.path, busy_timeout_ms, durable=synchronous.upper() != "OFF"
                )
                self._close_rollups = weakref.finalize(self, self._rollups.close)
                stale = self._rollups.stale_on_opening()
            if stale:  # filled again now, without holding up the other processes' writes
                try:
                    with translate_errors():
                        self._rollups.ensure()
                except StoreUnavailable as exc:  # (busy: another process fills them; if not,
                    # the next report or fold does)
                    log.info("the usage rollups are filled again later: %s", exc)

    # -- connections -------------------------------------------------------------------

    def _connect(self, *, rollups: bool = False) -> sqlite3.Connection:
        """A connection to the database; with `rollups`, with the rollups' file attached
        (readers: a report reads both; never a writer, whose `BEGIN IMMEDIATE` would lock
        that file too)."""
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
        if rollups:
            attach(conn, self.path)
        with self._connections_lock:
            self._all_connections.append(conn)
        return conn

    def _runner(self) -> SqliteRunner:
        runner: SqliteRunner | None = getattr(self._local, "runner", None)
        if runner is None:
            with translate_errors():
                runner = SqliteRunner(self._connect(rollups=True))
            self._local.runner = runner
        return runner

    def _migrate(self) -> None:
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            migrate(SqliteRunner(conn))
            conn.execute("COMMIT")
        finally:
            _end_transaction(conn)

    def close(self) -> None:
        if self._folds is not None:
            self._folds.close()  # (a fold under way ends first)
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._close_rollups()
        with self._connections_lock:
            for conn in self._all_connections:
                conn.close()
            self._all_connections.clear()
        self._announced.close()
        self._close_lock()

    # -- catalog changes ---------------------------------------------------------------

    def watch_catalog(self) -> _SqliteWatch:
        watch = _SqliteWatch(self._runner, self._announced)
        self._watches.add(watch)
        return watch

    def _announce(self, version: int | None) -> None:
        """After a commit that changed the catalog, still holding the write lock: every
        process sees the new version in shared memory; this one's watches at once."""
        if version is not None:
            self._announced.write(version)
            for watch in list(self._watches):
                watch.announce(version)

    # -- units of work -----------------------------------------------------------------

    def group_commit_on(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on `run` queues units of work, and the next iteration of `loop` runs
        every queued unit in one transaction (group commit); and the WAL is checkpointed
        by a thread of this store's, not by the commits."""
        self._loop = loop
        if self._checkpointer is None:
            self._writer.execute(f"PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}")
            self._checkpointer = _Checkpointer(self._connect())
        if self._folds is None:
            self._folds = BackgroundFolds(self._fold, "sqlite-fold")

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        with self._exclusive(), translate_errors():
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                runner = SqliteRunner(conn)
                tx = SqlTransaction(runner)
                yield tx
                appended = tx.log_stored_usage()
                deleted = self._delete_folded_log(runner)
                version = tx.publish_changes()
                conn.execute("COMMIT")
                self._log_deleted = deleted
                self._announce(version)
            finally:
                _end_transaction(conn)
        if self.folds.appended(appended):
            try:  # (committed: a fold that fails is retried by a later one)
                self._fold()
            except Exception as exc:
                log.warning("folding the usage log failed (a later fold retries): %r", exc)

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
        answer([future for _, future in group], self._run_group([unit for unit, _ in group]))

    def _run_group(self, units: list[Unit]) -> list[Outcome]:
        """Every unit in one transaction, each in a savepoint of its own; then commit. A
        unit's own error is answered only after the commit too: it may rest on rows of
        this group. If the group fails, every unit gets a retryable error."""
        answers: list[Outcome] = []
        started = time.perf_counter()
        try:
            with self._exclusive(), translate_errors():
                conn = self._writer
                runner = SqliteRunner(conn)
                changes: list[CatalogChange] = []
                stored: list[MeteringRecord] = []
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for unit in units:
                        conn.execute("SAVEPOINT unit")
                        tx = SqlTransaction(runner)
                        try:
                            answers.append((unit(tx), True))
                            changes.extend(tx.changes)
                            stored.extend(tx.stored)
                        except Exception as exc:
                            if not conn.in_transaction:  # an I/O error undid the whole group
                                raise
                            conn.execute("ROLLBACK TO unit")
                            answers.append((exc, False))
                        conn.execute("RELEASE unit")
                    # the group's sums into the usage log, in one statement
                    appended = add_usage(runner, stored)
                    deleted = self._delete_folded_log(runner)
                    version = publish(runner, changes)
                    conn.execute("COMMIT")
                    self._log_deleted = deleted
                    self._announce(version)
                finally:
                    _end_transaction(conn)
        except BaseException as exc:
            return failed_group(exc, len(units), "SQLite")
        if self.folds.appended(appended) and self._folds is not None:
            self._folds.soon()
        metrics.group_committed("sqlite", len(units), time.perf_counter() - started, len(stored))
        return answers

    def _fold(self) -> None:
        """One fold, in a transaction of the rollups' file (never the records' lock)."""
        self.fold_usage(FOLD_LIMIT)

    def fold_usage(self, limit: int | None = None) -> int:
        """Fold the usage log's oldest rows (up to `limit` of the records and of the log's
        rows; None: all) into the rollups now; the number moved."""
        with translate_errors():
            return self._rollups.fold(limit)

    def _delete_folded_log(self, runner: SqliteRunner) -> int:
        """Inside a writer's transaction: delete the usage log's rows a committed fold
        marked folded (if any since the last time); the mark deleted up to."""
        mark = self._rollups.pending_folded
        if mark > self._log_deleted:
            runner.execute("DELETE FROM usage_pending WHERE seq <= ?", (mark,))
        return max(mark, self._log_deleted)

    @contextmanager
    def _usage_snapshot(self) -> Iterator[tuple[SqliteRunner, FoldMarks]]:
        """One read transaction of both files, the database read first, and the rollups'
        marks in it — once rollups of another generation are filled again."""
        runner = self._runner()
        conn = runner.connection
        with translate_errors():
            for _ in range(3):
                conn.execute("BEGIN")
                try:
                    marks = read_marks(conn)
                except BaseException:
                    _end_transaction(conn)
                    raise
                if marks is not None:
                    break
                _end_transaction(conn)
                self._rollups.ensure()
            else:
                raise StoreUnavailable("SQLite: the usage rollups' generation keeps changing")
            try:
                yield runner, marks
            finally:
                _end_transaction(conn)

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


class _Checkpointer:
    """Copies the WAL's committed pages back into the database file, on a thread and a
    connection of its own (a passive checkpoint: it never waits for, nor blocks, a writer
    or a reader). Left to the commits, a checkpoint runs inside one of them, under the
    write lock, and writes the pages of scattered inserts at random places: a third of
    the time of batches spread over many customers."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(CHECKPOINT_INTERVAL):
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                continue  # busy or closed: the next turn, or the writer's own, does it

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _SharedVersion:
    """The newest catalog version any process committed, in 8 bytes of shared memory: the
    file beside the database that writers lock. Written under that lock; read by every
    request of every process for the cost of a memory read."""

    def __init__(self, fd: int) -> None:
        if os.fstat(fd).st_size < 8:
            os.ftruncate(fd, 8)  # zeros; growing it again later changes nothing
        self._map = mmap.mmap(fd, 8)

    def read(self) -> int:
        return int(struct.unpack_from("<q", self._map)[0])

    def write(self, version: int) -> None:
        if version > self.read():
            struct.pack_into("<q", self._map, 0, version)

    def close(self) -> None:
        self._map.close()


class _SqliteWatch(LogWatch):
    """Hears of new versions from the shared memory, and once a second from the database
    itself (the safety net: a writer killed between its commit and its announcement)."""

    def __init__(self, reads: Callable[[], SqliteRunner], shared: _SharedVersion) -> None:
        super().__init__(reads)
        self._shared = shared
        self._next_check = time.monotonic() + SAFETY_INTERVAL

    def confirm(self) -> None:
        """Nothing to do: a writer announces its version in the shared memory before its
        transaction's call returns, so `changed` is exact already."""

    def changed(self) -> bool:
        shared = self._shared.read()
        self._known = max(self._known, shared)
        if super().changed():
            return True
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + SAFETY_INTERVAL
        self.announce(current_version(self._reads()))
        return super().changed()


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
    except sqlite3.DatabaseError as exc:  # busy, locked, damaged, …
        raise StoreUnavailable(f"SQLite: {exc}") from exc
