"""The usage rollups (`usage_by_hour`, `usage_by_day`): added to by the transaction that
stores records, read by the usage report (`domain.usage`).

A record adds to one row of each table per distinct tag set of its allocations (see the
migration `0006_usage_rollups.sql`). A transaction adds all its records' sums at once,
just before it commits; on PostgreSQL its rows in key order — two transactions adding to
the same rows take their locks in the same order, so they queue and never deadlock.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
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

DAY_MS = 86_400_000
SHARDS = 16

_SUMS = ("units", "micros", "records", "allocations")
_HOUR_KEY = ("product_code", "hour", "dimension", "tags", "shard")
_DAY_KEY = (
    "product_code",
    "month",
    "customer_aws_account_id",
    "customer_identifier",
    "dimension",
    "tags",
    "day",
)
_SUM_TYPES = ("bigint",) * len(_SUMS)
_HOUR_TYPES = ("text", "bigint", "text", "text", "smallint", *_SUM_TYPES)
_DAY_TYPES = ("text", "bigint", "text", "text", "text", "text", "bigint", *_SUM_TYPES)


def _upsert_sql(table: str, key: tuple[str, ...], source: str) -> str:
    added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in _SUMS)
    return (
        f"INSERT INTO {table} ({', '.join(key + _SUMS)}) {source} "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {added}"
    )


_SQLITE_ROWS = 2_000
"""Rows per SQLite statement (at 11 values a row, under its 32,766 parameters)."""


def _add(
    sums: dict[tuple[Any, ...], list[int]],
    key: tuple[Any, ...],
    micros: int,
    records: int,
    allocations: int,
) -> None:
    entry = sums.get(key)
    if entry is None:
        sums[key] = [micros, records, allocations]
    else:
        entry[0] += micros
        entry[1] += records
        entry[2] += allocations


@lru_cache(maxsize=256)
def _values_upsert_sql(table: str, key: tuple[str, ...], width: int, rows: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return _upsert_sql(table, key, "VALUES " + ", ".join([row] * rows))


def add_to_rollups(run: Runner, records: Iterable[MeteringRecord]) -> None:
    """Add newly stored records to both rollups (inside their transaction)."""
    hours: dict[tuple[Any, ...], list[int]] = {}
    days: dict[tuple[Any, ...], list[int]] = {}
    shards: dict[str, int] = {}
    instants: dict[Any, tuple[int, int, int]] = {}
    for r in records:
        s = r.slot
        account = s.customer_aws_account_id
        shard = shards.get(account)
        if shard is None:
            shard = shards[account] = zlib.crc32(account.encode()) % SHARDS
        known = instants.get(s.hour)
        if known is None:
            hour_ms = to_ms(s.hour)
            month_ms = to_ms(s.hour.replace(day=1, hour=0))
            known = instants[s.hour] = (hour_ms, hour_ms - hour_ms % DAY_MS, month_ms)
        hour, day, month = known
        product, dimension, identifier = s.product_code, s.dimension, r.customer_identifier
        if r.allocations is None:  # the usual case, without tag_sets' lists
            parts: Iterable[tuple[str, int, int]] = (("", r.quantity.micros, 1),)
        else:
            parts = tag_sets(r.allocations, r.quantity.micros)
        first = 1
        for tags, micros, allocations in parts:
            _add(hours, (product, hour, dimension, tags, shard), micros, first, allocations)
            _add(
                days,
                (product, month, account, identifier, dimension, tags, day),
                micros,
                first,
                allocations,
            )
            first = 0
    if not hours:
        return
    postgres = run.dialect == "postgresql"
    statements = []
    for table, key_columns, types, sums in (
        ("usage_by_hour", _HOUR_KEY, _HOUR_TYPES, hours),
        ("usage_by_day", _DAY_KEY, _DAY_TYPES, days),
    ):
        # PostgreSQL: rows in key order, so that concurrent transactions lock them in the
        # same order (no deadlock). SQLite has one writer at a time.
        items = sorted(sums.items()) if postgres else sums.items()
        rows = [(*k, *divmod(m, MICROS_PER_UNIT), n, a) for k, (m, n, a) in items]
        if postgres:
            source, params = rows_select(run.dialect, types, rows)
            statements.append((_upsert_sql(table, key_columns, source), params))
            continue
        # SQLite: plain VALUES (a JSON source is parsed again for every field it yields)
        width = len(types)
        for at in range(0, len(rows), _SQLITE_ROWS):
            chunk = rows[at : at + _SQLITE_ROWS]
            flat = [v for row in chunk for v in row]
            run.execute(_values_upsert_sql(table, key_columns, width, len(chunk)), flat)
    if postgres:  # one round trip: the first upsert as a CTE
        (hour_sql, hour_params), (day_sql, day_params) = statements
        run.execute(f"WITH by_hour AS ({hour_sql}) {day_sql}", [*hour_params, *day_params])


def rebuild_rollups(run: Runner) -> None:
    """Empty both rollups and add every stored record again (after the migration that
    made them, or to repair them)."""
    run.execute("DELETE FROM usage_by_hour", ())
    run.execute("DELETE FROM usage_by_day", ())
    after = 0
    while rows := record_page(run, RecordFilter(), after, 5000):
        add_to_rollups(run, [row.record for row in rows])
        after = rows[-1].seq


class UsageReads:
    """`usage_sums`, run by `self._runner()`."""

    def _runner(self) -> Runner:
        raise NotImplementedError

    def usage_sums(self, query: UsageSlice) -> list[UsageSum]:
        sql, params, groups = _sums_query(query)
        at = groups.index("at") if "at" in groups else None
        who = groups.index("customer_aws_account_id") if query.by_customer else None
        dimension = groups.index("dimension")
        tags = groups.index("tags") if "tags" in groups else None
        allocations = groups.index("allocations") if "allocations" in groups else None
        n = len(groups)
        sums: list[UsageSum] = []
        append = sums.append
        for row in self._runner().fetchall(sql, params):
            micros = int(row[n]) * MICROS_PER_UNIT + int(row[n + 1])
            count = int(row[n + 2])
            when = None if at is None else from_ms(int(row[at]))
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


def _sums_query(q: UsageSlice) -> tuple[str, list[Any], list[str]]:
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
        sums = [
            f"SUM(quantity_micros / {MICROS_PER_UNIT})",
            # (the remainder by hand: "%" is a placeholder's mark for psycopg)
            f"SUM(quantity_micros - quantity_micros / {MICROS_PER_UNIT} * {MICROS_PER_UNIT})",
            "COUNT(*)",
        ]
    elif q.source == "hours":
        table = "usage_by_hour"
        where = "product_code = ? AND hour >= ? AND hour < ?"
        params = [q.product_code, start, end]
        groups = ["hour"] if q.per_hour else []
        groups += ["dimension", *(["tags"] if q.by_tags else [])]
        sums = ["SUM(units)", "SUM(micros)", f"SUM({'allocations' if q.by_tags else 'records'})"]
    else:  # days: grouped in the order of the key, which begins with the month
        table = "usage_by_day"
        # (a slice of days lies within one month: the domain asks month by month)
        month = to_ms(q.start.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
        where = "product_code = ? AND month = ? AND day >= ? AND day < ?"
        params = [q.product_code, month, start, end]
        groups = customer if q.by_customer else []
        groups += ["dimension", *(["tags"] if q.by_tags else [])]
        groups += ["day"] if q.per_day else []
        sums = ["SUM(units)", "SUM(micros)", f"SUM({'allocations' if q.by_tags else 'records'})"]
    listed = ", ".join(groups)
    sql = f"SELECT {listed}, {', '.join(sums)} FROM {table} WHERE {where} GROUP BY {listed}"
    return sql, params, ["at" if g in ("hour", "day") else g for g in groups]
