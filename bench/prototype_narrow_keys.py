"""A prototype of narrower keys on SQLite, measured before a migration is written for it:
the slot's unique key as (hour, an integer id of the rest) instead of six columns of
text; the ids kept in a table of their own and, in the server, in a dictionary.

Importing this module changes marketmeter as it runs (a fresh database only: the empty
records table is made again with the new key), for `bench/hotspots.py` and the A/B
scripts (`python -m bench.prototype_narrow_keys serve …`). Not safe for anything else:
the dictionary is never invalidated (a reset or a restore would leave it stale), and the
occupants of taken slots are still looked up by the text columns (a scan).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any

from marketmeter.domain.models import MeteringRecord
from marketmeter.store import sqlite as sqlite_store
from marketmeter.store.sql import metering

Key = tuple[str, str, str, str, str]
_IDS: dict[Key, int] = {}
KEYS = "product_code, customer_aws_account_id, resource, license_key, dimension"
_ROW = "(" + ", ".join("?" * len(metering.RECORD_COLUMNS.split(","))) + ")"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meter_keys (
    id INTEGER PRIMARY KEY,
    product_code TEXT NOT NULL, customer_aws_account_id TEXT NOT NULL, resource TEXT NOT NULL,
    license_key TEXT NOT NULL, dimension TEXT NOT NULL,
    UNIQUE (product_code, customer_aws_account_id, resource, license_key, dimension)
)
"""


def _migrate(self: Any) -> None:
    _original_migrate(self)
    conn = self._writer
    (sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'metering_records'"
    ).fetchone()
    if "meter_key" in sql:
        return
    if conn.execute("SELECT count(*) FROM metering_records").fetchone()[0]:
        raise SystemExit("prototype_narrow_keys: a fresh database only")
    narrowed = sql.replace(
        "UNIQUE (product_code, hour, customer_aws_account_id, resource, license_key, dimension)",
        "meter_key INTEGER NOT NULL, UNIQUE (hour, meter_key)",
    )
    assert narrowed != sql, sql
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(_SCHEMA)
    conn.execute("DROP TABLE metering_records")
    conn.execute(narrowed)
    conn.execute("COMMIT")


def narrowed(sql: str) -> str:
    """One of marketmeter's inserts of records, with the id column and the narrow key."""
    return (
        sql.replace(f"({metering.RECORD_COLUMNS})", f"({metering.RECORD_COLUMNS}, meter_key)")
        .replace(_ROW, _ROW[:-1] + ", ?)")
        .replace(f"ON CONFLICT ({metering._SLOT_COLUMNS})", "ON CONFLICT (hour, meter_key)")
    )


def key_of(record: MeteringRecord) -> Key:
    s = record.slot
    return (s.product_code, s.customer_aws_account_id, s.resource, s.license_key, s.dimension)


def with_ids(flat: list[Any], ids: list[int]) -> list[Any]:
    """marketmeter's parameters of records (a row of columns each), each row with its id."""
    width = len(flat) // len(ids)
    params: list[Any] = []
    for i, id_ in enumerate(ids):
        params.extend(flat[i * width : (i + 1) * width])
        params.append(id_)
    return params


@lru_cache(maxsize=64)
def _insert_sql(n: int) -> str:
    return narrowed(metering._insert_records_sql(n))


def _meter_key(run: Any, record: MeteringRecord) -> int:
    key = key_of(record)
    found = _IDS.get(key)
    if found is None:
        run.execute(
            f"INSERT INTO meter_keys ({KEYS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", key
        )
        found = int(
            run.fetchone(
                "SELECT id FROM meter_keys WHERE product_code = ? AND customer_aws_account_id = ? "
                "AND resource = ? AND license_key = ? AND dimension = ?",
                key,
            )[0]
        )
        _IDS[key] = found
    return found


def _insert_records(run: Any, records: list[MeteringRecord]) -> set[str]:
    if run.dialect != "sqlite":
        return _original_insert(run, records)
    params = with_ids(metering._records_params(records), [_meter_key(run, r) for r in records])
    return {row[0] for row in run.fetchall(_insert_sql(len(records)), params)}


_original_migrate = sqlite_store.SqliteStore._migrate
_original_insert = metering._insert_records
sqlite_store.SqliteStore._migrate = _migrate  # type: ignore[method-assign]
metering._insert_records = _insert_records

if __name__ == "__main__":
    from marketmeter.cli import main

    sys.argv[0] = "marketmeter"
    main()
