"""The SQLite store's usage rollups, in a file of their own: `<database>.rollups`.

SQLite has one write lock per file. With the rollups beside the records, every fold held
the records' lock for tens of milliseconds, and the requests that came meanwhile waited
for it (docs/performance.md, "Sixth round"). Here a fold's connection opens the database
read-only and attaches the rollups' file: it takes the rollups' write lock alone, then
reads the records and their log (`usage_pending`) in one snapshot while writers go on.

What the rollups hold is marked in their file (`usage_folded`), committed with the sums:
the records up to a `seq` (those without allocations: the records are their own log) and
the log's rows up to a `seq` (records with allocations, one row per tag set). The log's
rows stay in the database until a writer deletes those up to a mark it knows committed
(`pending_folded`); their `seq`s are never given twice (AUTOINCREMENT).

A report reads both files in one read transaction, the database first: whatever the
rollups' snapshot holds — newer or not — every record is counted once, by the rollups up
to their marks or by the database above them. A log row deleted before the report's
snapshot of the database was folded in a commit before it, which the rollups' later
snapshot holds.

The rollups are derived from the records. The database's `usage_generation` names the
state of its records they must match; a reset renews it. A rollups file of another
generation, or none (a restore, a copy, a lost file), is filled again from the records
before anything reads it (`ensure`) — and on opening, one whose marks lie beyond the
records (the database lost commits in a power cut that the rollups kept) too. The
rollups' file commits with `synchronous=FULL` (an fsync a fold, off the write path): a
log row is deleted only after a mark that survives a power cut. (A throwaway database,
`synchronous=OFF`, has throwaway rollups too.)
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from marketmeter.store.codec import allocations_from_json
from marketmeter.store.sql.usage import (
    FOLD_LIMIT,
    ROLLUPS,
    SQLITE_MONTH,
    SQLITE_ROLLUPS,
    FoldMarks,
    fold_sql,
    log_rows,
    unfolded_records,
)

log = logging.getLogger("marketmeter.store")

SCHEMA_VERSION = 1
"""The rollups file's own schema (its `user_version`). A file of another is made again:
its contents are derived from the records."""

REBUILD_RECORDS = 500_000
"""Records a step of a rebuild sums (bounds the sort's temporary space)."""

_R = SQLITE_ROLLUPS

_SCHEMA = (
    # Quantities are whole units plus millionths, each summed on its own: exact, and no
    # sum overflows before billions of records. Times are epoch milliseconds (UTC).
    # Every customer's usage per product, hour, dimension and tag set ("shard": always 0).
    f"""CREATE TABLE IF NOT EXISTS {_R}.usage_by_hour (
        product_code TEXT NOT NULL,
        hour         INTEGER NOT NULL,
        dimension    TEXT NOT NULL,
        tags         TEXT NOT NULL,
        shard        INTEGER NOT NULL,
        units        INTEGER NOT NULL,
        micros       INTEGER NOT NULL,
        records      INTEGER NOT NULL,
        allocations  INTEGER NOT NULL,
        PRIMARY KEY (product_code, hour, dimension, tags, shard)
    ) WITHOUT ROWID""",
    # Each customer's usage per product, day (UTC), dimension and tag set; the key begins
    # with the month (a report of a month's days reads them in the key's order).
    f"""CREATE TABLE IF NOT EXISTS {_R}.usage_by_day (
        product_code            TEXT NOT NULL,
        month                   INTEGER NOT NULL,
        customer_aws_account_id TEXT NOT NULL,
        customer_identifier     TEXT NOT NULL,
        dimension               TEXT NOT NULL,
        tags                    TEXT NOT NULL,
        day                     INTEGER NOT NULL,
        units                   INTEGER NOT NULL,
        micros                  INTEGER NOT NULL,
        records                 INTEGER NOT NULL,
        allocations             INTEGER NOT NULL,
        PRIMARY KEY (product_code, month, customer_aws_account_id, customer_identifier,
                     dimension, tags, day)
    ) WITHOUT ROWID""",
    # What the rollups hold: the generation of the records they were made from, the last
    # record folded and the last row of the log folded.
    f"""CREATE TABLE IF NOT EXISTS {_R}.usage_folded (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        generation  TEXT NOT NULL,
        records_seq INTEGER NOT NULL,
        pending_seq INTEGER NOT NULL
    )""",
)

_MARKS = f"SELECT generation, records_seq, pending_seq FROM {_R}.usage_folded"
_GENERATION = "SELECT generation FROM main.usage_generation"


def rollups_path(database: str) -> str:
    """The rollups' file of a database, named from the database's real path."""
    return os.path.realpath(database) + ".rollups"


def attach(conn: sqlite3.Connection, database: str) -> None:
    """Attach a database's rollups file to `conn` (under the name the SQL uses)."""
    conn.execute(f"ATTACH DATABASE ? AS {_R}", (rollups_path(database),))
    conn.execute(f"PRAGMA {_R}.cache_size = -65536")


def read_marks(conn: sqlite3.Connection) -> FoldMarks | None:
    """Inside a read transaction of a connection with the rollups attached, the database
    read first: the rollups' marks, or None when the rollups are of another generation
    (or none) and must be filled again first."""
    (generation,) = conn.execute(_GENERATION).fetchone()
    row = conn.execute(_MARKS).fetchone()
    if row is None or row[0] != generation:
        return None
    return FoldMarks(int(row[1]), int(row[2]))


class RollupsFile:
    """The folds into a database's rollups file, on a connection of their own (threads of
    this process take turns on it; processes on the file's write lock)."""

    def __init__(self, database: str, busy_timeout_ms: int, *, durable: bool = True) -> None:
        self._synchronous = "FULL" if durable else "OFF"
        uri = Path(os.path.realpath(database)).as_uri() + "?mode=ro"
        conn = sqlite3.connect(
            uri,
            uri=True,
            timeout=busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        self._conn = conn
        self._lock = threading.Lock()
        self.pending_folded = 0
        """The last row of the log this process knows folded, in a committed fold."""
        self._log_mark = 0
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA cache_size = -65536")
            try:
                attach(conn, database)
                self._prepare()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError):
                    raise  # (busy, no space, …: not the file's fault)
                # Damaged, or not a database at all: it is derived from the records, so
                # it is made again (the caller holds the database's write lock).
                log.warning("the usage rollups' file is damaged (%s): making it again", exc)
                if any(row[1] == _R for row in conn.execute("PRAGMA database_list")):
                    conn.execute(f"DETACH DATABASE {_R}")
                for suffix in ("", "-wal", "-shm"):
                    Path(rollups_path(database) + suffix).unlink(missing_ok=True)
                attach(conn, database)
                self._prepare()
        except BaseException:
            conn.close()
            raise

    def _prepare(self) -> None:
        """The file in WAL mode with this version's tables (made again if of another)."""
        conn = self._conn
        conn.execute(f"PRAGMA {_R}.journal_mode = WAL")
        conn.execute(f"PRAGMA {_R}.synchronous = {self._synchronous}")
        (version,) = conn.execute(f"PRAGMA {_R}.user_version").fetchone()
        if version == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for (name,) in conn.execute(
                f"SELECT name FROM {_R}.sqlite_master WHERE type = 'table'"
            ).fetchall():
                conn.execute(f'DROP TABLE {_R}."{name}"')
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA {_R}.user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def fold(self, limit: int | None = FOLD_LIMIT) -> int:
        """Move the oldest unfolded records and log rows (up to `limit` of each; None: all)
        into the rollups; the number moved. Rollups of another generation are filled again
        from the records instead."""
        return self._locked(lambda: self._fold(limit))

    def ensure(self) -> int:
        """Fill the rollups again from the records if they are of another generation; the
        number of records summed again (0: none needed)."""
        return self._locked(self._ensure)

    def stale_on_opening(self) -> bool:
        """Only while the database's write lock is held (no record can be newer than what
        this reads): True when the rollups must be filled again — of another generation,
        or holding records the database lost (then marked of no generation first, so that
        every process fills them again before it reads them). Reads only, but for that
        mark: the filling is left to `ensure`, once the caller let go of the lock."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN")
            try:
                marks = read_marks(conn)
                newest, given = _newest_seqs(conn)
            finally:
                conn.execute("ROLLBACK")
        if marks is None:
            return True
        if marks.records <= newest and marks.pending <= given:
            self.pending_folded = max(self.pending_folded, marks.pending)
            return False
        log.warning(
            "the usage rollups hold records the database does not (lost in a power cut?): "
            "summing them again from the records"
        )
        self._locked(self._forget)
        return True

    def _forget(self) -> int:
        self._conn.execute(f"UPDATE {_R}.usage_folded SET generation = ''")
        return 0

    def _locked(self, work: Callable[[], int]) -> int:
        with self._lock:
            conn = self._conn
            self._log_mark = 0
            # The rollups' write lock first, the records' snapshot after it: BEGIN
            # IMMEDIATE would take the snapshot first, then wait for the lock, and a fold
            # would then work from records older than the rollups it adds to.
            conn.execute("BEGIN")
            try:
                conn.execute(f"UPDATE {_R}.usage_folded SET id = id WHERE id = 1")
                done = work()
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            # committed: the log's rows up to the mark may go
            self.pending_folded = max(self.pending_folded, self._log_mark)
            return done

    def _ensure(self) -> int:
        marks = read_marks(self._conn)
        if marks is not None:
            self._log_mark = marks.pending
            return 0
        return self._rebuild()

    def _fold(self, limit: int | None) -> int:
        conn = self._conn
        marks = read_marks(conn)
        if marks is None:
            return self._rebuild()
        most = -1 if limit is None else limit  # (LIMIT -1: no limit)
        pending, from_log = _fold_above(conn, "usage_pending", marks.pending, most, _log_rows)
        records, from_records = _fold_above(
            conn, "metering_records", marks.records, most, unfolded_records
        )
        moved = from_log + from_records
        if moved or pending != marks.pending or records != marks.records:
            conn.execute(
                f"UPDATE {_R}.usage_folded SET records_seq = ?, pending_seq = ?",
                (records, pending),
            )
        self._log_mark = pending
        return moved

    def _rebuild(self) -> int:
        """Empty the rollups and sum every record of the database's snapshot again: those
        without allocations from the records in SQL, those with split by tag set here. The
        log's rows so far are marked folded: their records are among those summed. The
        number of records summed."""
        conn = self._conn
        (generation,) = conn.execute(_GENERATION).fetchone()
        newest, given = _newest_seqs(conn)
        for table, _ in ROLLUPS:
            conn.execute(f"DELETE FROM {_R}.{table}")
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS rebuilt_usage (product_code, hour, month, "
            "customer_aws_account_id, customer_identifier, dimension, tags, micros, records, "
            "allocations)"
        )
        summed = 0
        for low in range(0, newest, REBUILD_RECORDS):
            high = min(low + REBUILD_RECORDS, newest)
            source = unfolded_records(f"seq > {low} AND seq <= {high}")
            summed += conn.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
            _fold_into_rollups(conn, source)
            summed += self._sum_allocated(low, high)
        conn.execute(
            f"INSERT INTO {_R}.usage_folded (id, generation, records_seq, pending_seq) "
            "VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET generation = "
            "excluded.generation, records_seq = excluded.records_seq, "
            "pending_seq = excluded.pending_seq",
            (generation, newest, given),
        )
        self._log_mark = given
        log.info("usage rollups filled again from %d records", summed)
        return summed

    def _sum_allocated(self, low: int, high: int) -> int:
        """The records with allocations in (low, high], one log row per tag set, into the
        rollups (through a temporary table of this connection's)."""
        conn = self._conn
        found = conn.execute(
            f"SELECT product_code, hour, {SQLITE_MONTH}, customer_aws_account_id, "
            "customer_identifier, dimension, allocations, quantity_micros "
            "FROM main.metering_records WHERE seq > ? AND seq <= ? "
            "AND allocations IS NOT NULL",
            (low, high),
        ).fetchall()
        rows = [
            row
            for *key, dimension, allocations, micros in found
            for row in log_rows(tuple(key), dimension, allocations_from_json(allocations), micros)
        ]
        if rows:
            conn.executemany(
                "INSERT INTO temp.rebuilt_usage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            _fold_into_rollups(conn, "temp.rebuilt_usage")
            conn.execute("DELETE FROM temp.rebuilt_usage")
        return len(found)


def _fold_above(
    conn: sqlite3.Connection, table: str, mark: int, most: int, rows: Callable[[str], str]
) -> tuple[int, int]:
    """Fold the rows of `table` above `mark` (the oldest `most`; -1: all), as log rows
    made by `rows` from a condition on `seq`: the new mark, and the log rows folded."""
    top = conn.execute(
        f"SELECT max(seq) FROM (SELECT seq FROM main.{table} WHERE seq > ? ORDER BY seq LIMIT ?)",
        (mark, most),
    ).fetchone()[0]
    if top is None:
        return mark, 0
    source = rows(f"seq > {int(mark)} AND seq <= {int(top)}")
    (moved,) = conn.execute(f"SELECT count(*) FROM {source}").fetchone()
    _fold_into_rollups(conn, source)
    return int(top), int(moved)


def _log_rows(seqs: str) -> str:
    """The usage log's rows whose `seq` meets `seqs`."""
    return f"(SELECT * FROM main.usage_pending WHERE {seqs})"


def _fold_into_rollups(conn: sqlite3.Connection, source: str) -> None:
    for table, key in ROLLUPS:
        conn.execute(fold_sql(f"{_R}.{table}", key, source))


def _newest_seqs(conn: sqlite3.Connection) -> tuple[int, int]:
    """The newest record's `seq`, and the last `seq` the log gave, in the database."""
    (newest,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM main.metering_records").fetchone()
    row = conn.execute(
        "SELECT seq FROM main.sqlite_sequence WHERE name = 'usage_pending'"
    ).fetchone()
    return int(newest), int(row[0]) if row else 0
