"""The usage rollups (`usage_by_hour`, `usage_by_day`) and their log (`usage_pending`):
written by the transactions that store records, read by the usage report (`domain.usage`).

Records with allocations are logged by `add_usage`, one row per tag set. Records without
(nearly all) are their own log, read from `metering_records` when folded: on SQLite the
rows above the last one folded, by their `seq` (a writer at a time: `seq` only grows); on
PostgreSQL, whose writers commit out of the order of `seq`, the rows of the transactions
that have ended since the last fold, by the transaction id each row carries (`logged_by`).
Either way the write path pays for no second row and no scattered index entries. The log
is folded into the rollups in bulk, its rows grouped and sorted by the rollups' keys, when
due (`FoldSchedule`): on PostgreSQL by `fold_usage`, in the database; on SQLite by
`store.sqlite_rollups`, into a file of its own. A report reads the rollups and the log's
rows together, in one snapshot: exact at every moment, whether folded or not.

A record makes one log row per distinct tag set of its allocations ('' when it has none).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from marketmeter.domain.models import Allocation, MeteringRecord
from marketmeter.domain.ports import RecordFilter, UsageSlice, UsageSum
from marketmeter.domain.quantities import MICROS_PER_UNIT
from marketmeter.domain.usage import tag_sets
from marketmeter.instants import from_ms, to_ms
from marketmeter.store.codec import allocations_from_json
from marketmeter.store.sql.metering import record_page
from marketmeter.store.sql.runner import Runner, rows_select

DAY_MS = 86_400_000

_SUMS = ("units", "micros", "records", "allocations")
_LOG = (
    "product_code",
    "hour",
    "month",
    "customer_aws_account_id",
    "customer_identifier",
    "dimension",
    "tags",
    "micros",
    "records",
    "allocations",
)
_LOG_TYPES = ("text", "bigint", "bigint", "text", "text", "text", "text") + ("bigint",) * 3
_DAY = f"hour / {DAY_MS} * {DAY_MS}"  # the day of an hour (epoch ms, whole days)
ROLLUPS = (
    ("usage_by_hour", ("product_code", "hour", "dimension", "tags", "shard")),
    (
        "usage_by_day",
        (
            "product_code",
            "month",
            "customer_aws_account_id",
            "customer_identifier",
            "dimension",
            "tags",
            "day",
        ),
    ),
)

SQLITE_MONTH = "CAST(strftime('%s', hour / 1000, 'unixepoch', 'start of month') AS INTEGER) * 1000"
"""SQLite: the first instant of an hour's month (epoch ms), from the hour (epoch ms)."""


PG_MONTH = (
    "(extract(epoch FROM date_trunc('month', to_timestamp(hour / 1000) AT TIME ZONE 'UTC'))"
    " * 1000)::bigint"
)
"""PostgreSQL: the same."""


def unfolded_records(where: str, dialect: str = "sqlite") -> str:
    """The records without allocations that meet `where` (SQLite: "seq > ?", above the
    last folded; PostgreSQL: a range of `logged_by`), as rows of the log."""
    month, table = (
        (SQLITE_MONTH, "main.metering_records")
        if dialect == "sqlite"
        else (PG_MONTH, "metering_records")
    )
    return (
        f"(SELECT product_code, hour, {month} AS month, customer_aws_account_id, "
        "customer_identifier, dimension, '' AS tags, quantity_micros AS micros, "
        f"1 AS records, 1 AS allocations FROM {table} "
        f"WHERE {where} AND allocations IS NULL)"
    )


def pg_horizon(run: Runner) -> tuple[int, int]:
    """PostgreSQL: the transaction id below which the rollups hold every record without
    allocations, and the oldest transaction still running (below it, every transaction
    has ended: its records, if it committed, are visible to any later statement)."""
    row = run.fetchone(
        "SELECT below_xid, pg_snapshot_xmin(pg_current_snapshot())::text::bigint "
        "FROM usage_folded WHERE id = 1",
        (),
    )
    return int(row[0]), int(row[1])


_SQLITE_ROWS = 3_200
"""Log rows per SQLite statement (at 10 values a row, under its 32,766 parameters)."""

FOLD_ROWS = 8_192
"""A process folds the log after appending this many rows to it…"""
FOLD_SECONDS = 1.0
"""…or, having appended any, this long after its last fold."""
FOLD_LIMIT = 32_768
"""The most log rows one fold moves (its transaction stays short; the next takes the rest)."""
SQLITE_ROLLUPS = "rollups"
"""SQLite: the name the rollups' file is attached under (`store.sqlite_rollups`)."""
XID_CEILING = 2**62
"""PostgreSQL: above any transaction id (64-bit, counted from 3 up, one a transaction)."""
FOLD_LOCK = 0x6D6D_666F_6C64
"""PostgreSQL: the advisory lock one folding transaction holds at a time."""


def add_usage(run: Runner, records: Iterable[MeteringRecord]) -> int:
    """Log newly stored records' sums (inside their transaction): those with allocations
    here, one row per tag set; the others are their own log (read from `metering_records`
    when folded). The number of log rows the records made, theirs included."""
    rows: list[tuple[Any, ...]] = []
    hours: dict[Any, tuple[int, int]] = {}
    logged = 0
    for r in records:
        if r.allocations is None:
            logged += 1
            continue
        s = r.slot
        known = hours.get(s.hour)
        if known is None:
            known = hours[s.hour] = (to_ms(s.hour), to_ms(s.hour.replace(day=1, hour=0)))
        key = (s.product_code, *known, s.customer_aws_account_id, r.customer_identifier)
        rows.extend(log_rows(key, s.dimension, r.allocations, r.quantity.micros))
    if not rows:
        return logged
    logged += len(rows)
    columns = ", ".join(_LOG)
    if run.dialect == "postgresql":
        source, params = rows_select(run.dialect, _LOG_TYPES, rows)
        run.execute(f"INSERT INTO usage_pending ({columns}) {source}", params)
        return logged
    # SQLite: plain VALUES (a JSON source is parsed again for every field it yields)
    width = len(_LOG_TYPES)
    for at in range(0, len(rows), _SQLITE_ROWS):
        chunk = rows[at : at + _SQLITE_ROWS]
        run.execute(_values_insert_sql(columns, width, len(chunk)), [v for r in chunk for v in r])
    return logged


def log_rows(
    key: tuple[Any, ...], dimension: str, allocations: Sequence[Allocation] | None, micros: int
) -> Iterator[tuple[Any, ...]]:
    """A record's rows of the log, one per tag set of its allocations: `key` (product, hour,
    month, account, identifier), then dimension, tags, millionths, records (1 on the
    first row: the record counts once) and allocations."""
    first = 1
    for tags, part, allocated in tag_sets(allocations, micros):
        yield (*key, dimension, tags, part, first, allocated)
        first = 0


@lru_cache(maxsize=64)
def _values_insert_sql(columns: str, width: int, rows: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return f"INSERT INTO usage_pending ({columns}) VALUES " + ", ".join([row] * rows)


def _split_sum(column: str) -> str:
    """The sums of a column of millionths, as whole units and the millionths left over
    (summed apart, so that no sum overflows; "%" is a placeholder's mark for psycopg)."""
    return (
        f"SUM({column} / {MICROS_PER_UNIT}), "
        f"SUM({column} - {column} / {MICROS_PER_UNIT} * {MICROS_PER_UNIT})"
    )


def fold_sql(table: str, key: tuple[str, ...], source: str) -> str:
    """Add the grouped rows of `source` (log rows) to `table` (its name may be qualified
    by a schema), in the order of its key.
    A log row holds one record's millionths: split into units and millionths here, so
    that no sum overflows."""
    derived = {"day": _DAY, "shard": "0"}
    picked = ", ".join(derived.get(c, c) for c in key)
    listed = ", ".join(key)
    order = ", ".join(str(i + 1) for i in range(len(key)))
    summed = f"{_split_sum('micros')}, SUM(records), SUM(allocations)"
    added = ", ".join(f"{c} = r.{c} + excluded.{c}" for c in _SUMS)
    return (
        f"INSERT INTO {table} AS r ({listed}, {', '.join(_SUMS)}) "
        f"SELECT {picked}, {summed} FROM {source} GROUP BY {order} ORDER BY {order} "
        f"ON CONFLICT ({listed}) DO UPDATE SET {added}"
    )


def fold_usage(run: Runner, limit: int | None = FOLD_LIMIT) -> int:
    """PostgreSQL: fold into the rollups, inside the caller's transaction, the records
    without allocations of every transaction that has ended since the last fold, and the
    log's oldest rows (those of records with allocations, up to `limit`; None: all); the
    number of log rows folded. One folding transaction runs at a time (others return 0).
    The horizon is read before the fold's statement: every transaction below it has ended,
    so the statement's later snapshot sees each of their records or never will. One
    statement deletes the log's rows it adds — rows committed meanwhile are neither.
    (One folder at a time: the rollups' "shard", which spread concurrent writers, is
    always 0 now.) SQLite's folds: `store.sqlite_rollups`."""
    if not run.fetchone("SELECT pg_try_advisory_xact_lock(?)", (FOLD_LOCK,))[0]:
        return 0
    below, horizon = pg_horizon(run)
    horizon = max(below, horizon)
    row = run.fetchone(pg_fold_statement(limit), (below, horizon))
    if horizon > below:
        run.execute("UPDATE usage_folded SET below_xid = ? WHERE id = 1", (horizon,))
    return int(row[0])


@lru_cache(maxsize=8)
def pg_fold_statement(limit: int | None) -> str:
    """PostgreSQL: the fold's statement; its parameters, the range of transaction ids whose
    records it folds. (Its records are found by the index on `logged_by`: a range, which
    even a generic plan reads by the index.)"""
    capped = "" if limit is None else f" ORDER BY seq LIMIT {int(limit)}"
    (hour_table, hour_key), (day_table, day_key) = ROLLUPS
    columns = ", ".join(_LOG)
    records = unfolded_records("logged_by >= ? AND logged_by < ?", "postgresql")
    return (
        "WITH moved AS (DELETE FROM usage_pending WHERE seq IN "
        f"(SELECT seq FROM usage_pending{capped}) RETURNING {columns}), "
        f"logged AS (SELECT {columns} FROM moved UNION ALL SELECT {columns} FROM {records} r), "
        f"by_hour AS ({fold_sql(hour_table, hour_key, 'logged')}), "
        f"by_day AS ({fold_sql(day_table, day_key, 'logged')}) "
        "SELECT count(*) FROM logged"
    )


class FoldSchedule:
    """When a process folds the log: after `FOLD_ROWS` appended rows, or `FOLD_SECONDS`
    after its last fold if it appended any. Thread-safe: one caller claims each fold."""

    def __init__(self, rows: int = FOLD_ROWS, seconds: float = FOLD_SECONDS) -> None:
        self._rows, self._seconds = rows, seconds
        self._lock = threading.Lock()
        self._appended = 0
        self._folded_at = time.monotonic()

    def appended(self, rows: int) -> bool:
        """Note `rows` appended; True when the caller is to fold now."""
        if rows == 0:
            return False
        with self._lock:
            self._appended += rows
            now = time.monotonic()
            if self._appended < self._rows and now - self._folded_at < self._seconds:
                return False
            self._appended = 0
            self._folded_at = now
            return True


def rebuild_rollups(run: Runner) -> None:
    """PostgreSQL: empty the rollups and their log, and add every stored record again
    (after the migration that made them, after a restore from another cluster, or to
    repair them), inside the caller's transaction. SQLite's rollups are filled again by
    `store.sqlite_rollups`."""
    run.execute("SELECT pg_advisory_xact_lock(?)", (FOLD_LOCK,))  # no fold meanwhile
    for table in ("usage_by_hour", "usage_by_day", "usage_pending"):
        run.execute(f"DELETE FROM {table}", ())
    # Every record is folded again from transaction id 0. Those that carry an id this
    # cluster has not reached yet (restored from another) would wait for it: they carry 0.
    _, horizon = pg_horizon(run)
    run.execute("UPDATE metering_records SET logged_by = 0 WHERE logged_by >= ?", (horizon,))
    run.execute("UPDATE usage_folded SET below_xid = 0 WHERE id = 1", ())
    after = 0
    while rows := record_page(run, RecordFilter(), after, 5000, allocated=True):
        add_usage(run, [row.record for row in rows])
        after = rows[-1].seq
    fold_usage(run, None)


PG_STALE_MARK = "below_xid > pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
"""PostgreSQL, of `usage_folded`'s row: whether the rollups' mark lies beyond every
transaction this cluster has begun — the database was restored from another cluster,
whose transaction ids mean nothing here (new records would fall below the mark and never
be summed). Checked on opening (`stale_rollups`) and by the doctor."""


def stale_rollups(run: Runner) -> bool:
    """PostgreSQL: whether the rollups are of another cluster (`PG_STALE_MARK`)."""
    row = run.fetchone(f"SELECT {PG_STALE_MARK} FROM usage_folded WHERE id = 1", ())
    return bool(row[0])


class FoldMarks(NamedTuple):
    """What the rollups hold, read in the snapshot of the report that uses them. SQLite:
    the records up to `records` (by `seq`) and the log's rows up to `pending`. PostgreSQL:
    the records without allocations of the transactions below `records` (`logged_by`);
    the log's rows folded are deleted (`pending` is 0)."""

    records: int
    pending: int


class UsageReads:
    """`usage_sums`, run by `self._runner()`."""

    def _runner(self) -> Runner:
        raise NotImplementedError

    def _usage_snapshot(self) -> AbstractContextManager[tuple[Runner, FoldMarks]]:
        """The runner a report reads with, in one snapshot, and the marks of what the
        rollups hold, read in it (each store's own)."""
        raise NotImplementedError

    def usage_sums(self, query: UsageSlice) -> list[UsageSum]:
        with self._usage_snapshot() as (run, marks):
            sql, params, groups = sums_query(query, run.dialect, marks)
            rows = run.fetchall(sql, params)
        at = groups.index("at") if "at" in groups else None
        who = groups.index("customer_aws_account_id") if query.by_customer else None
        dimension = groups.index("dimension")
        tags = groups.index("tags") if "tags" in groups else None
        allocations = groups.index("allocations") if "allocations" in groups else None
        n = len(groups)
        sums: list[UsageSum] = []
        append = sums.append
        instants: dict[Any, datetime] = {}  # (a slice's rows share a few hours or days)
        for row in rows:
            micros = int(row[n]) * MICROS_PER_UNIT + int(row[n + 1])
            count = int(row[n + 2])
            when = None
            if at is not None:
                when = instants.get(row[at])
                if when is None:
                    when = instants[row[at]] = from_ms(int(row[at]))
            account = identifier = None
            if who is not None:
                account, identifier = row[who], row[who + 1] or None
            if allocations is None:
                tag_set = "" if tags is None else row[tags]
                append(UsageSum(when, identifier, account, row[dimension], tag_set, micros, count))
                continue
            # Records grouped by their allocations as sent: split each group's sums by tag
            # set (records with the same allocations have the same quantities).
            parsed = allocations_from_json(row[allocations])
            if parsed is None:
                append(UsageSum(when, identifier, account, row[dimension], "", micros, count))
                continue
            for tag_set, part, allocated in tag_sets(parsed, 0):
                append(
                    UsageSum(
                        when,
                        identifier,
                        account,
                        row[dimension],
                        tag_set,
                        part * count,
                        allocated * count,
                    )
                )
        return sums


def sums_query(
    q: UsageSlice, dialect: str, marks: FoldMarks | None = None
) -> tuple[str, list[Any], list[str]]:
    """The slice's SELECT, its parameters, and the names of its grouping columns (the time
    column named "at"), which come first, then the sums: units, millionths, count. From
    the rollups, `marks` (read in the same snapshot) tells which rows of the log they
    hold."""
    start, end = to_ms(q.start), to_ms(q.end)
    customer = ["customer_aws_account_id", "customer_identifier"]
    if q.source == "records":
        table = "metering_records"
        where = "product_code = ? AND hour >= ? AND hour < ?"
        params: list[Any] = [q.product_code, start, end]
        groups = ["hour"] if q.per_hour else []
        groups += customer if q.by_customer else []
        groups += ["dimension", *(["allocations"] if q.by_tags else [])]
        sums = [_split_sum("quantity_micros"), "COUNT(*)"]
    else:
        # The rollup's rows, then the log's not yet folded into it, in one snapshot with the
        # marks (a fold moves rows from one to the other atomically). The domain adds up
        # the rows of equal groups.
        count = "allocations" if q.by_tags else "records"
        sums = ["SUM(units)", "SUM(micros)", f"SUM({count})"]
        groups = ["hour"] if q.source == "hours" and q.per_hour else []
        groups += customer if q.source == "days" and q.by_customer else []
        groups += ["dimension", *(["tags"] if q.by_tags else [])]
        groups += ["day"] if q.source == "days" and q.per_day else []
        listed = ", ".join(groups)
        schema = ""
        if marks is None:
            raise ValueError("the rollups are read with their marks")
        if dialect == "sqlite":
            schema = f"{SQLITE_ROLLUPS}."
        if q.source == "hours":
            rollup = f"{schema}usage_by_hour WHERE product_code = ? AND hour >= ? AND hour < ?"
            params = [q.product_code, start, end]
        else:  # days: grouped in the order of the key, which begins with the month
            # (a slice of days lies within one month: the domain asks month by month)
            month = to_ms(q.start.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
            rollup = (
                f"{schema}usage_by_day "
                "WHERE product_code = ? AND month = ? AND day >= ? AND day < ?"
            )
            params = [q.product_code, month, start, end]
        logged = ", ".join(f"{_DAY} AS day" if g == "day" else g for g in groups)
        logged_sums = f"{_split_sum('micros')}, SUM({count})"
        sql = (
            f"SELECT {listed}, {', '.join(sums)} FROM {rollup} GROUP BY {listed} UNION ALL "
            f"SELECT {logged}, {logged_sums} FROM usage_pending "
            f"WHERE product_code = ? AND hour >= ? AND hour < ?"
        )
        params += [q.product_code, start, end]
        if dialect == "sqlite":
            # The log's rows above its mark (those below wait to be deleted), then the
            # records not folded yet, found by `seq` (the "+" keeps SQLite from reading
            # the slot index's range of the whole slice instead).
            sql += (
                f" AND seq > ? GROUP BY {listed} UNION ALL "
                f"SELECT {logged}, {logged_sums} FROM {unfolded_records('seq > ?')} "
                f"WHERE +product_code = ? AND +hour >= ? AND +hour < ? GROUP BY {listed}"
            )
            params += [marks.pending, marks.records, q.product_code, start, end]
        else:
            # The log's rows (those folded are deleted), then the records not folded yet,
            # found by the index on `logged_by` ("OFFSET 0" keeps the slice's conditions
            # out of that scan, which would otherwise read the slot index's range of the
            # whole slice; a range, closed by a ceiling no id reaches, is read by the index
            # even in a generic plan).
            unfolded = unfolded_records("logged_by >= ? AND logged_by < ?", dialect)
            sql += (
                f" GROUP BY {listed} UNION ALL "
                f"SELECT {logged}, {logged_sums} FROM "
                f"(SELECT * FROM {unfolded} r OFFSET 0) u "
                f"WHERE product_code = ? AND hour >= ? AND hour < ? GROUP BY {listed}"
            )
            params += [marks.records, XID_CEILING, q.product_code, start, end]
        return sql, params, ["at" if g in ("hour", "day") else g for g in groups]
    listed = ", ".join(groups)
    sql = f"SELECT {listed}, {', '.join(sums)} FROM {table} WHERE {where} GROUP BY {listed}"
    return sql, params, ["at" if g in ("hour", "day") else g for g in groups]
