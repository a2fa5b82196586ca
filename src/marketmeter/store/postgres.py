"""The production store: PostgreSQL through psycopg 3 and its connection pool.

Any number of server processes may share one database: every claim is an
`INSERT … ON CONFLICT DO NOTHING` on a unique key, so two processes racing for one slot,
one ClientToken or one key version can never both win. Transactions run at READ COMMITTED:
a claim that loses a race waits for the winner's commit and then reads the winner.
Migrations take an advisory lock, so processes starting together apply each one once.

Group commit: on a server's event loop (`group_commit_on`), `run` queues units of work and
hands each loop iteration's queue, as one group, to a thread that runs it in one
transaction — up to `max_groups` groups at a time, each on a connection of its own; the
units that come meanwhile wait for the next group. A group is first run plainly, its units
one after the other; if a unit raises (a duplicate, a dry run, a conflict), the
transaction is rolled back and the group runs again with each unit in a savepoint, so
that the failing unit rolls back alone. Either way a unit is answered only after the
commit: a network round trip and a commit (an fsync on the server) are most of the cost
of a small unit, and a group pays them once. The usage log is folded into the rollups
after a group's commit, on a thread of its own (a fold moves thousands of rows; no group
waits for it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from marketmeter import metrics
from marketmeter.domain.models import MeteringRecord
from marketmeter.domain.ports import (
    Claiming,
    FirstClaim,
    StoreConflict,
    StoreUnavailable,
    Transaction,
)
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
    fold_usage,
    migrate,
    record_from_row,
    records_query,
)
from marketmeter.store.sql.changes import (
    CHANNEL,
    SAFETY_INTERVAL,
    LogWatch,
    current_version,
    publish,
)
from marketmeter.store.sql.metering import first_claims_statement
from marketmeter.store.sql.runner import Dialect, rows_select
from marketmeter.store.sql.usage import FoldMarks, pg_horizon, rebuild_rollups, stale_rollups

log = logging.getLogger("marketmeter.store")

T = TypeVar("T")
MIGRATION_LOCK = 0x6D6D6574  # "mmet": the advisory lock migrations hold
MAX_GROUPS = 1
"""Groups one process runs at a time (each holds a connection while it runs). One is the
classic group commit — the requests that come while a group commits form the next — and
measured best in `make bench` (2, 4 and 8 measured no faster, with more GIL hand-offs)."""


class _UnitFailed(Exception):
    """A unit raised in a group run without savepoints: run the group again with them."""


@lru_cache(maxsize=512)
def to_pg(sql: str) -> str:
    """The shared queries use `?`; psycopg wants `%s`. (None contains a literal `?`.)"""
    return sql.replace("?", "%b")


_IN_TRANSACTION = psycopg.pq.TransactionStatus.INTRANS
COPY_FROM_ROWS = 1_000
"""From this many rows, `select_rows` copies them into a temporary table (`COPY`) rather
than sending them as arrays: psycopg dumps a 100,000-row array slowly (catalog apply)."""


def _claim_ahead(
    conn: psycopg.Connection[Any], units: list[Unit]
) -> dict[int, tuple[FirstClaim, list[Any]]]:
    """The first claims of a group's units (`Claiming`: BatchMeterUsage's records,
    MeterUsage's record and ClientToken), sent together in one statement — one round
    trip and one statement, not one a unit — and the rows each unit's own statement would
    have returned, by the unit's place in the group. The units then run as always, their
    first claims answered from these (`MeteringWrites.claimed_ahead`). A failure here
    fails the attempt without savepoints, which the group then makes with them (and no
    claims ahead)."""
    claims = [
        (i, claim)
        for i, unit in enumerate(units)
        if isinstance(unit, Claiming) and (claim := unit.first_claim) is not None and claim.records
    ]
    if len(claims) < 2 or not CLAIMS_AHEAD:
        return {}
    sql, params, answers = first_claims_statement([claim for _, claim in claims])
    try:
        rows = conn.execute(to_pg(sql), params).fetchall()
    except psycopg.Error as exc:
        raise _UnitFailed() from exc
    return {
        i: (claim, answered) for (i, claim), answered in zip(claims, answers(rows), strict=True)
    }


CLAIMS_AHEAD = True
"""Whether a group's first claims go ahead in one statement (`bench/without_claims_ahead`
turns it off)."""


class PostgresRunner:
    dialect: Dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._copies = 0

    def fetchone(self, sql: str, params: tuple[Any, ...] | list[Any]) -> Any:
        with translate_errors():
            return self._conn.execute(to_pg(sql), params).fetchone()

    def fetchall(self, sql: str, params: tuple[Any, ...] | list[Any]) -> list[Any]:
        with translate_errors():
            return self._conn.execute(to_pg(sql), params).fetchall()

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any]) -> int:
        with translate_errors():
            return self._conn.execute(to_pg(sql), params).rowcount

    def select_rows(
        self, types: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> tuple[str, list[Any]]:
        if len(rows) < COPY_FROM_ROWS or self._conn.info.transaction_status != _IN_TRANSACTION:
            return rows_select(self.dialect, types, rows)
        # A table of this transaction's (dropped at its end, kept by none of the pool's
        # connections), filled by one COPY.
        self._copies += 1
        table = f"copied_rows_{self._copies}"
        columns = [f"c{i}" for i in range(len(types))]
        definition = ", ".join(f"{c} {t}" for c, t in zip(columns, types, strict=True))
        with translate_errors():
            self._conn.execute(f"CREATE TEMPORARY TABLE {table} ({definition}) ON COMMIT DROP")
            with self._conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return f"SELECT {', '.join(columns)} FROM {table}", []


class _PooledRunner:
    """Reads outside a transaction: each on a connection borrowed from the pool."""

    dialect: Dialect = "postgresql"

    def __init__(self, pool: ConnectionPool[Any], timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout

    def fetchone(self, sql: str, params: tuple[Any, ...] | list[Any]) -> Any:
        with translate_errors(), self._pool.connection(self._timeout) as conn:
            return conn.execute(to_pg(sql), params).fetchone()

    def fetchall(self, sql: str, params: tuple[Any, ...] | list[Any]) -> list[Any]:
        with translate_errors(), self._pool.connection(self._timeout) as conn:
            return list(conn.execute(to_pg(sql), params).fetchall())

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any]) -> int:
        with translate_errors(), self._pool.connection(self._timeout) as conn:
            return int(conn.execute(to_pg(sql), params).rowcount)

    def select_rows(
        self, types: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> tuple[str, list[Any]]:
        return rows_select(self.dialect, types, rows)


class PostgresStore(SqlReader, OutboxStore):
    def __init__(
        self,
        conninfo: str,
        *,
        pool_size: int = 16,
        pool_timeout: float = 5.0,
        max_groups: int = MAX_GROUPS,
    ) -> None:
        self.conninfo = conninfo
        self._timeout = pool_timeout
        self._max_groups = max(1, min(max_groups, pool_size))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: list[Queued] = []
        self._in_flight = 0
        self._dispatch_planned = False
        self._groups: ThreadPoolExecutor | None = None
        self._folds: BackgroundFolds | None = None
        self._pool: ConnectionPool[Any] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            open=False,
            name="marketmeter",
        )
        self._closed = threading.Event()
        with translate_errors():
            # One direct connection first: an unreachable server is reported at once, in
            # libpq's words, rather than as a pool that never filled.
            psycopg.connect(conninfo, connect_timeout=max(1, int(pool_timeout))).close()
            self._pool.open(wait=True, timeout=pool_timeout)
            self._migrate()
        self._reads = _PooledRunner(self._pool, pool_timeout)
        self._watches: weakref.WeakSet[_PostgresWatch] = weakref.WeakSet()
        self.folds = FoldSchedule()

    def _runner(self) -> _PooledRunner:
        return self._reads

    def _migrate(self) -> None:
        with self._pool.connection(self._timeout) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            runner = PostgresRunner(conn)
            migrate(runner)
            if stale_rollups(runner):  # restored from another cluster
                log.warning("the usage rollups are of another cluster: summing them again")
                rebuild_rollups(runner)

    @contextmanager
    def _usage_snapshot(self) -> Iterator[tuple[PostgresRunner, FoldMarks]]:
        """One REPEATABLE READ transaction: the rollups' mark, then the report, in one
        snapshot (a fold commits its sums and its mark together)."""
        with translate_errors(), self._pool.connection(self._timeout) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            try:
                runner = PostgresRunner(conn)
                below, _ = pg_horizon(runner)
                yield runner, FoldMarks(below, 0)
            finally:
                conn.execute("ROLLBACK")  # (read only: nothing to keep)

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        with translate_errors(), self._pool.connection(self._timeout) as conn:
            with conn.transaction():
                tx = SqlTransaction(PostgresRunner(conn))
                yield tx
                appended = tx.log_stored_usage()
                version = tx.publish_changes()
            if version is not None:  # committed: this process's caches know at once
                for watch in list(self._watches):
                    watch.announce(version)
        self._fold_if_due(appended)

    def _fold_if_due(self, appended: int) -> None:
        """After a commit that appended `appended` rows to the usage log: fold, if due — on
        the folds' thread when the server runs one, else now. Always after the commit: a
        fold reads the records of ended transactions only, and a failed fold (a later one
        retries it) never fails a write."""
        if not self.folds.appended(appended):
            return
        if self._folds is not None:
            self._folds.soon()
            return
        try:
            self._fold()
        except Exception as exc:
            log.warning("folding the usage log failed (a later fold retries): %r", exc)

    def watch_catalog(self) -> _PostgresWatch:
        watch = _PostgresWatch(self.conninfo, self._runner)
        self._watches.add(watch)
        return watch

    def iter_records(self, product_code: str | None = None) -> Iterator[MeteringRecord]:
        sql, params = records_query(product_code)
        with (
            translate_errors(),
            self._pool.connection(self._timeout) as conn,
            conn.transaction(),
            conn.cursor(name="marketmeter_export") as cursor,
        ):
            cursor.itersize = 2000
            cursor.execute(to_pg(sql), params)
            for row in cursor:
                yield record_from_row(row)

    # -- units of work -----------------------------------------------------------------

    def group_commit_on(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on `run` queues units of work, run in groups on threads of their own
        (group commit)."""
        self._loop = loop
        self._groups = ThreadPoolExecutor(self._max_groups, thread_name_prefix="pg-group")
        self._folds = BackgroundFolds(self._fold, "pg-fold")

    async def run(self, unit: Callable[[Transaction], T]) -> T:
        loop = self._loop
        if loop is None:  # a transaction of its own, on a worker thread (psycopg blocks)
            return await asyncio.to_thread(self._run_now, unit)
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((unit, future))
        self._plan_dispatch()
        return await future  # type: ignore[no-any-return]

    def _run_now(self, unit: Callable[[Transaction], T]) -> T:
        with self.transaction() as tx:
            return unit(tx)

    def _plan_dispatch(self) -> None:
        """Send the queue as a group at the end of this loop iteration, if a thread is free
        (else a group that finishes sends it)."""
        if self._queue and not self._dispatch_planned and self._in_flight < self._max_groups:
            assert self._loop is not None
            self._dispatch_planned = True
            self._loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._dispatch_planned = False
        if not self._queue or self._in_flight >= self._max_groups:
            return
        group, self._queue = self._queue, []
        self._in_flight += 1
        loop, threads = self._loop, self._groups
        assert loop is not None
        assert threads is not None
        futures = [future for _, future in group]
        work = threads.submit(self._run_group, [unit for unit, _ in group])
        work.add_done_callback(
            lambda done: loop.call_soon_threadsafe(self._finished, futures, done)
        )

    def _finished(self, futures: list[asyncio.Future[Any]], work: Future[list[Outcome]]) -> None:
        self._in_flight -= 1
        answer(futures, work.result())
        self._plan_dispatch()

    def _run_group(self, units: list[Unit]) -> list[Outcome]:
        """On a group thread: every unit in one transaction (see the module's doc). If the
        transaction fails, every unit gets a retryable error."""
        try:
            try:
                return self._group_transaction(units, savepoints=False)
            except _UnitFailed:
                return self._group_transaction(units, savepoints=True)
        except BaseException as exc:
            return failed_group(exc, len(units), "PostgreSQL")

    def _group_transaction(self, units: list[Unit], *, savepoints: bool) -> list[Outcome]:
        outcomes: list[Outcome] = []
        started = time.perf_counter()
        with (
            translate_errors(),
            self._pool.connection(self._timeout) as conn,
            conn.transaction(),
        ):
            runner = PostgresRunner(conn)
            changes: list[Any] = []
            stored: list[MeteringRecord] = []
            ahead = {} if savepoints else _claim_ahead(conn, units)
            for i, unit in enumerate(units):
                tx = SqlTransaction(runner)
                if not savepoints:
                    tx.claimed_ahead = ahead.get(i)
                    try:
                        outcomes.append((unit(tx), True))
                    except Exception as exc:
                        raise _UnitFailed() from exc
                    if tx.claimed_ahead is not None:  # it did not make the claim sent for it
                        raise _UnitFailed()
                else:
                    try:
                        with conn.transaction():  # a savepoint
                            outcomes.append((unit(tx), True))
                    except Exception as exc:
                        if conn.info.transaction_status != _IN_TRANSACTION:
                            raise  # the connection broke: the whole group fails
                        outcomes.append((exc, False))
                        continue
                changes.extend(tx.changes)
                stored.extend(tx.stored)
            appended = add_usage(runner, stored)
            version = publish(runner, changes)
        if version is not None:
            for watch in list(self._watches):
                watch.announce(version)
        self._fold_if_due(appended)
        seconds = time.perf_counter() - started
        metrics.group_committed("postgresql", len(units), seconds, len(stored))
        return outcomes

    def _fold(self) -> None:
        """On the folds' thread: one fold, in a transaction of its own."""
        with (
            translate_errors(),
            self._pool.connection(self._timeout) as conn,
            conn.transaction(),
        ):
            fold_usage(PostgresRunner(conn))

    def fold_usage(self, limit: int | None = None) -> int:
        """Fold the usage log's oldest rows (up to `limit`; None: all) into the rollups
        now; the number moved (0 while another transaction folds)."""
        with (
            translate_errors(),
            self._pool.connection(self._timeout) as conn,
            conn.transaction(),
        ):
            return fold_usage(PostgresRunner(conn), limit)

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            if self._groups is not None:
                self._groups.shutdown(wait=True)
            if self._folds is not None:
                self._folds.close()
            for watch in list(self._watches):
                watch.close()
            self._pool.close()


class _PostgresWatch(LogWatch):
    """Hears of new versions by `LISTEN`, on a connection of its own in a thread of its
    own; checks the version itself once a second (the safety net); after any break of that
    connection, and when it first listens, assumes everything changed."""

    LISTENER = "marketmeter-catalog-listener"  # its application_name, in pg_stat_activity
    _POLL = 0.25  # seconds between looks at the stop flag

    def __init__(self, conninfo: str, reads: Callable[[], _PooledRunner]) -> None:
        self._conninfo = conninfo
        self._stop = threading.Event()
        first: psycopg.Connection[Any] | None = None
        try:  # listening before the version is read: nothing falls between the two
            first = self._connect()
        except psycopg.Error as exc:
            log.warning("catalog listener: %s; reconnecting", str(exc).strip())
        super().__init__(reads)
        if first is None:
            self.lose()
        self._thread = threading.Thread(
            target=self._listen, args=(first,), name=self.LISTENER, daemon=True
        )
        self._thread.start()

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._conninfo, autocommit=True, application_name=self.LISTENER)
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def _listen(self, conn: psycopg.Connection[Any] | None) -> None:
        backoff = 0.1
        warned = False
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = self._connect()
                    self.lose()  # what came while nobody listened is unknown
                    backoff, warned = 0.1, False
                with conn:
                    self._serve(conn)
            except psycopg.Error as exc:
                self.lose()
                if not warned:
                    log.warning("catalog listener: %s; reconnecting", str(exc).strip())
                    warned = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            conn = None

    def _serve(self, conn: psycopg.Connection[Any]) -> None:
        since_check = 0.0
        while not self._stop.is_set():
            for notice in conn.notifies(timeout=self._POLL):
                if notice.payload.isdigit():
                    self.announce(int(notice.payload))
            since_check += self._POLL
            if since_check >= SAFETY_INTERVAL:
                since_check = 0.0
                self.announce(current_version(PostgresRunner(conn)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * self._POLL + 1)


@contextmanager
def translate_errors() -> Iterator[None]:
    try:
        yield
    except (psycopg.IntegrityError, psycopg.DataError) as exc:
        raise StoreConflict(str(exc).strip()) from exc
    except (psycopg.Error, PoolTimeout) as exc:
        raise StoreUnavailable(f"PostgreSQL: {str(exc).strip()}") from exc
