"""The usage rollups (`usage_by_hour`, `usage_by_day`) and their log (`usage_pending`):
written by the transactions that store records, read by the usage report (`domain.usage`).

Records with allocations are logged by `add_usage`, one row per tag set. Records without
(nearly all) are logged by the database: on PostgreSQL a trigger copies them into the log
as they are stored; on SQLite the records themselves are the log — the rows of
`metering_records` above the last one folded (`usage_folded`), read by their `seq` (a
writer at a time: `seq` only grows). Either way the write path pays for no scattered index
entries. The log is folded into the rollups in bulk (`fold_usage`), its rows grouped and
sorted by the rollups' keys, when due (`FoldSchedule`). A report reads the rollups and the
log's rows together, in one statement: exact at every moment, whether folded or not (see
the migrations `0006_usage_rollups.sql`, `0007_usage_log.sql` and, on SQLite,
`0008_records_as_usage_log.sql`).

A record makes one log row per distinct tag set of its allocations ('' when it has none).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from marketmeter.domain.models import MeteringRecord
from marketmeter.domain.ports import RecordFilter, UsageSlice, UsageSum
from marketmeter.domain.quantities import MICROS_PER_UNIT
from marketmeter.domain.usage import tag_sets
from marketmeter.instants import from_ms, to_ms
from marketmeter.store.codec import allocations_from_json
from marketmeter.store.sql.metering import record_page
from marketmeter.store.sql.runner import Runner, rows_select

log = logging.getLogger("marketmeter.store")

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
_ROLLUPS = (
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

_SQLITE_MONTH = "CAST(strftime('%s', hour / 1000, 'unixepoch', 'start of month') AS INTEGER) * 1000"
"""SQLite: the first instant of an hour's month (epoch ms), from the hour (epoch ms)."""
_LAST_FOLDED = "(SELECT COALESCE(MAX(last_seq), 0) FROM usage_folded)"
"""SQLite: the `seq` of the last record folded (0 when none was, or after a reset)."""


def _unfolded_records(bounded: str = "") -> str:
    """SQLite: the records without allocations not folded yet, as rows of the log (read by
    their `seq`, above the last folded; `bounded` adds a condition on it)."""
    return (
        f"(SELECT product_code, hour, {_SQLITE_MONTH} AS month, customer_aws_account_id, "
        "customer_identifier, dimension, '' AS tags, quantity_micros AS micros, "
        "1 AS records, 1 AS allocations FROM metering_records "
        f"WHERE seq > {_LAST_FOLDED}{bounded} AND allocations IS NULL)"
    )


_SQLITE_ROWS = 3_200
"""Log rows per SQLite statement (at 10 values a row, under its 32,766 parameters)."""

FOLD_ROWS = 8_192
"""A process folds the log after appending this many rows to it…"""
FOLD_SECONDS = 1.0
"""…or, having appended any, this long after its last fold."""
FOLD_LIMIT = 32_768
"""The most log rows one fold moves (its transaction stays short; the next takes the rest)."""
FOLD_LOCK = 0x6D6D_666F_6C64
"""PostgreSQL: the advisory lock one folding transaction holds at a time."""


def add_usage(run: Runner, records: Iterable[MeteringRecord], *, untagged: bool = False) -> int:
    """Log newly stored records' sums (inside their transaction): those with allocations
    here, one row per tag set; the others are logged by the database as it stores them
    (PostgreSQL's trigger; on SQLite they are read from `metering_records` when folded),
    or here too when `untagged` (records stored before the log existed, which the caller
    then marks folded). The number of log rows the records made."""
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    hours: dict[Any, tuple[int, int]] = {}
    logged = 0
    for r in records:
        if r.allocations is None and not untagged:
            logged += 1
            continue
        s = r.slot
        known = hours.get(s.hour)
        if known is None:
            known = hours[s.hour] = (to_ms(s.hour), to_ms(s.hour.replace(day=1, hour=0)))
        first = 1
        for tags, micros, allocations in tag_sets(r.allocations, r.quantity.micros):
            append(
                (
                    s.product_code,
                    *known,
                    s.customer_aws_account_id,
                    r.customer_identifier,
                    s.dimension,
                    tags,
                    micros,
                    first,
                    allocations,
                )
            )
            first = 0
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


def _fold_sql(table: str, key: tuple[str, ...], source: str) -> str:
    """Add the grouped rows of `source` (log rows) to `table`, in the order of its key.
    A log row holds one record's millionths: split into units and millionths here, so
    that no sum overflows."""
    derived = {"day": _DAY, "shard": "0"}
    picked = ", ".join(derived.get(c, c) for c in key)
    listed = ", ".join(key)
    order = ", ".join(str(i + 1) for i in range(len(key)))
    summed = f"{_split_sum('micros')}, SUM(records), SUM(allocations)"
    added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in _SUMS)
    return (
        f"INSERT INTO {table} ({listed}, {', '.join(_SUMS)}) "
        f"SELECT {picked}, {summed} FROM {source} GROUP BY {order} ORDER BY {order} "
        f"ON CONFLICT ({listed}) DO UPDATE SET {added}"
    )


def fold_usage(run: Runner, limit: int | None = FOLD_LIMIT) -> int:
    """Move the log's oldest rows (up to `limit`; None: all) into the rollups, inside the
    caller's transaction (on SQLite, one that holds the write lock); the number moved.
    On SQLite, each of the log's two parts (its rows, the records above the last folded)
    moves up to `limit`. On PostgreSQL, one statement deletes the rows it adds — rows
    committed meanwhile are neither — and one folding transaction runs at a time (others
    return 0). (One folder at a time: the rollups' "shard", which spread concurrent
    writers, is always 0 now.)"""
    if run.dialect == "postgresql":
        if not run.fetchone("SELECT pg_try_advisory_xact_lock(?)", (FOLD_LOCK,))[0]:
            return 0
        capped = "" if limit is None else f" ORDER BY seq LIMIT {int(limit)}"
        (hour_table, hour_key), (day_table, day_key) = _ROLLUPS
        row = run.fetchone(
            "WITH moved AS (DELETE FROM usage_pending WHERE seq IN "
            f"(SELECT seq FROM usage_pending{capped}) RETURNING *), "
            f"by_hour AS ({_fold_sql(hour_table, hour_key, 'moved')}), "
            f"by_day AS ({_fold_sql(day_table, day_key, 'moved')}) "
            "SELECT count(*) FROM moved",
            (),
        )
        return int(row[0])
    # SQLite: the log's rows, then the records above the last folded (each part up to
    # `limit`; LIMIT -1 is no limit).
    most = -1 if limit is None else limit
    moved = 0
    top = run.fetchone(
        "SELECT max(seq) FROM (SELECT seq FROM usage_pending ORDER BY seq LIMIT ?)", (most,)
    )[0]
    if top is not None:
        source = f"(SELECT * FROM usage_pending WHERE seq <= {int(top)})"
        for table, key in _ROLLUPS:
            run.execute(_fold_sql(table, key, source), ())
        moved += run.execute("DELETE FROM usage_pending WHERE seq <= ?", (top,))
    newest = run.fetchone(
        "SELECT max(seq) FROM (SELECT seq FROM metering_records "
        f"WHERE seq > {_LAST_FOLDED} ORDER BY seq LIMIT ?)",
        (most,),
    )[0]
    if newest is not None:
        source = _unfolded_records(f" AND seq <= {int(newest)}")
        moved += int(run.fetchone(f"SELECT count(*) FROM {source}", ())[0])
        for table, key in _ROLLUPS:
            run.execute(_fold_sql(table, key, source), ())
        _mark_folded(run, int(newest))
    return moved


def _mark_folded(run: Runner, seq: int) -> None:
    """SQLite: the records up to `seq` are in the rollups."""
    run.execute(
        "INSERT INTO usage_folded (id, last_seq) VALUES (1, ?) "
        "ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq",
        (seq,),
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


def fold_when_due(run: Runner, folds: FoldSchedule, appended: int) -> None:
    """After a transaction appended `appended` log rows, before it commits: fold the log
    if `folds` says it is time — in a savepoint, so that a fold that fails (it is retried
    by a later one) never fails the transaction that stored records."""
    if not folds.appended(appended):
        return
    run.execute("SAVEPOINT fold", ())
    try:
        fold_usage(run)
    except Exception as exc:
        run.execute("ROLLBACK TO SAVEPOINT fold", ())
        log.warning("folding the usage log failed (a later fold retries): %r", exc)
    run.execute("RELEASE SAVEPOINT fold", ())


def rebuild_rollups(run: Runner) -> None:
    """Empty the rollups and their log, and add every stored record again (after the
    migration that made them, or to repair them)."""
    for table in ("usage_by_hour", "usage_by_day", "usage_pending"):
        run.execute(f"DELETE FROM {table}", ())
    after = 0
    if run.dialect == "sqlite":  # every record is logged below: none is left to read
        _mark_folded(
            run, int(run.fetchone("SELECT COALESCE(MAX(seq), 0) FROM metering_records", ())[0])
        )
    while rows := record_page(run, RecordFilter(), after, 5000):
        add_usage(run, [row.record for row in rows], untagged=True)
        fold_usage(run, None)
        after = rows[-1].seq


class UsageReads:
    """`usage_sums`, run by `self._runner()`."""

    def _runner(self) -> Runner:
        raise NotImplementedError

    def usage_sums(self, query: UsageSlice) -> list[UsageSum]:
        run = self._runner()
        sql, params, groups = _sums_query(query, run.dialect)
        at = groups.index("at") if "at" in groups else None
        who = groups.index("customer_aws_account_id") if query.by_customer else None
        dimension = groups.index("dimension")
        tags = groups.index("tags") if "tags" in groups else None
        allocations = groups.index("allocations") if "allocations" in groups else None
        n = len(groups)
        sums: list[UsageSum] = []
        append = sums.append
        instants: dict[Any, datetime] = {}  # (a slice's rows share a few hours or days)
        for row in run.fetchall(sql, params):
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


def _sums_query(q: UsageSlice, dialect: str) -> tuple[str, list[Any], list[str]]:
    """The slice's SELECT, its parameters, and the names of its grouping columns (the time
    column named "at"), which come first, then the sums: units, millionths, count."""
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
        # The rollup's rows, then the log's not yet folded into it, in one statement (one
        # snapshot: a fold moves rows from one to the other atomically). The domain adds
        # up the rows of equal groups.
        count = "allocations" if q.by_tags else "records"
        sums = ["SUM(units)", "SUM(micros)", f"SUM({count})"]
        groups = ["hour"] if q.source == "hours" and q.per_hour else []
        groups += customer if q.source == "days" and q.by_customer else []
        groups += ["dimension", *(["tags"] if q.by_tags else [])]
        groups += ["day"] if q.source == "days" and q.per_day else []
        listed = ", ".join(groups)
        if q.source == "hours":
            rollup = "usage_by_hour WHERE product_code = ? AND hour >= ? AND hour < ?"
            params = [q.product_code, start, end]
        else:  # days: grouped in the order of the key, which begins with the month
            # (a slice of days lies within one month: the domain asks month by month)
            month = to_ms(q.start.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
            rollup = "usage_by_day WHERE product_code = ? AND month = ? AND day >= ? AND day < ?"
            params = [q.product_code, month, start, end]
        logged = ", ".join(f"{_DAY} AS day" if g == "day" else g for g in groups)
        logged_sums = [_split_sum("micros"), f"SUM({count})"]
        sql = (
            f"SELECT {listed}, {', '.join(sums)} FROM {rollup} GROUP BY {listed} UNION ALL "
            f"SELECT {logged}, {', '.join(logged_sums)} FROM usage_pending "
            f"WHERE product_code = ? AND hour >= ? AND hour < ? GROUP BY {listed}"
        )
        params += [q.product_code, start, end]
        if dialect == "sqlite":
            # The records not folded yet: found by `seq` (the "+" keeps SQLite from reading
            # the slot index's range of the whole slice instead).
            sql += (
                f" UNION ALL SELECT {logged}, {', '.join(logged_sums)} "
                f"FROM {_unfolded_records()} "
                f"WHERE +product_code = ? AND +hour >= ? AND +hour < ? GROUP BY {listed}"
            )
            params += [q.product_code, start, end]
        return sql, params, ["at" if g in ("hour", "day") else g for g in groups]
    listed = ", ".join(groups)
    sql = f"SELECT {listed}, {', '.join(sums)} FROM {table} WHERE {where} GROUP BY {listed}"
    return sql, params, ["at" if g in ("hour", "day") else g for g in groups]
