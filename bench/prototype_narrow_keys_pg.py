"""A prototype of narrower keys on PostgreSQL, measured before a migration is written for
it (the SQLite one: `bench/prototype_narrow_keys.py`): the slot's unique key as (hour, an
integer id of product, customer, resource, license key and dimension) instead of six
columns of text; the ids kept in a table of their own and, in the server, in a
dictionary. The benchmark's keys are made when the records' table is changed, and every
process loads them on start, as a server that ran for a while has them; a key not in the
dictionary is made or found by one statement on a connection of its own, committed at
once (an id no record uses yet is harmless).

Importing this module changes marketmeter as it runs (a fresh benchmark database only:
its records table must be empty), for the A/B scripts (`python -m
bench.prototype_narrow_keys_pg serve …`). Not safe for anything else: the dictionary is
never invalidated (a reset or a restore would leave it stale), and the occupants of taken
slots are still looked up by the text columns, which no index covers any more.

It shares the SQLite prototype's helpers; importing that module changes SQLite's store
too, which a PostgreSQL run never opens.
"""

from __future__ import annotations

import sys
import threading
from functools import lru_cache
from typing import Any

import psycopg
from bench.prototype_narrow_keys import KEYS as _KEYS
from bench.prototype_narrow_keys import Key, key_of, narrowed, with_ids

from marketmeter.domain.models import MeteringRecord
from marketmeter.store import postgres
from marketmeter.store.sql import metering
from marketmeter.store.sql.runner import array_columns, array_placeholders

_IDS: dict[Key, int] = {}
_LOCK = threading.Lock()
_CONNECTION: list[psycopg.Connection[Any]] = []
_CONNINFO: list[str] = []
_COLUMNS = f"{metering.RECORD_COLUMNS}, meter_key"
_TYPES = (*metering._RECORD_TYPES, "bigint")

_MAKE_KEYS = (
    f"WITH k AS (SELECT * FROM unnest({array_placeholders(('text',) * 5)}) "
    f"AS k({_KEYS})), made AS (INSERT INTO meter_keys ({_KEYS}) SELECT * FROM k "
    f"ON CONFLICT DO NOTHING RETURNING id, {_KEYS}) "
    f"SELECT id, {_KEYS} FROM made UNION ALL "
    f"SELECT m.id, {', '.join('m.' + c for c in _KEYS.split(', '))} FROM meter_keys m "
    f"JOIN k USING ({_KEYS})"
)
"""Every key's id: made if new, else found (a key another transaction made after this
statement's snapshot is in neither part: asked again)."""


def _migrate(self: Any) -> None:
    _original_migrate(self)
    _CONNINFO[:] = [self.conninfo]
    with self._pool.connection(self._timeout) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (postgres.MIGRATION_LOCK,))
        found = conn.execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'metering_records' AND column_name = 'meter_key'"
        ).fetchone()
        if found:
            _load(conn)
            return
        if conn.execute("SELECT count(*) FROM metering_records").fetchone()[0]:
            raise SystemExit("prototype_narrow_keys_pg: a fresh database only")
        conn.execute(
            "CREATE TABLE meter_keys (id BIGSERIAL PRIMARY KEY, product_code TEXT NOT NULL, "
            "customer_aws_account_id TEXT NOT NULL, resource TEXT NOT NULL, "
            "license_key TEXT NOT NULL, dimension TEXT NOT NULL, "
            f"UNIQUE ({_KEYS}))"
        )
        conn.execute("ALTER TABLE metering_records ADD COLUMN meter_key BIGINT NOT NULL")
        conn.execute("ALTER TABLE metering_records DROP CONSTRAINT metering_records_slot")
        conn.execute(
            "ALTER TABLE metering_records ADD CONSTRAINT metering_records_slot "
            "UNIQUE (hour, meter_key)"
        )
        # Every key the benchmark's requests use, as a server that ran for a while has them
        # (the SaaS product's subscriptions; the AMI product's callers, by access key).
        conn.execute(
            f"INSERT INTO meter_keys ({_KEYS}) "
            "SELECT s.product_code, s.customer_aws_account_id, '', '', d "
            "FROM subscriptions s JOIN products p USING (product_code), "
            "json_array_elements_text(p.dimensions::json) d "
            "WHERE s.product_code LIKE 'benchsaas%' "
            "UNION SELECT p.product_code, a.account_id, a.access_key_id, '', d "
            "FROM products p, access_keys a, json_array_elements_text(p.dimensions::json) d "
            "WHERE p.product_code LIKE 'benchami%' ON CONFLICT DO NOTHING"
        )
        _load(conn)


def _load(conn: psycopg.Connection[Any]) -> None:
    for row in conn.execute(f"SELECT id, {_KEYS} FROM meter_keys"):
        _IDS[tuple(row[1:])] = int(row[0])  # type: ignore[index]


def _resolve(keys: list[Key]) -> None:
    with _LOCK:
        if not _CONNECTION:
            _CONNECTION.append(psycopg.connect(_CONNINFO[0], autocommit=True))
        conn = _CONNECTION[0]
        missing = list(dict.fromkeys(k for k in keys if k not in _IDS))
        while missing:
            columns = array_columns(("text",) * 5, list(zip(*missing, strict=True)))
            for row in conn.execute(postgres.to_pg(_MAKE_KEYS), columns).fetchall():
                _IDS[tuple(row[1:])] = int(row[0])  # type: ignore[index]
            missing = [k for k in missing if k not in _IDS]


def _records_params(records: list[MeteringRecord]) -> list[Any]:
    keys = [key_of(r) for r in records]
    if any(k not in _IDS for k in keys):
        _resolve(keys)
    return with_ids(_original_params(records), [_IDS[k] for k in keys])


@lru_cache(maxsize=64)
def _insert_records_sql(n: int) -> str:
    return narrowed(_original_insert_sql(n))


def _narrowed_unnest(sql: str) -> str:
    """`narrowed`, for the inserts that unnest one array a column."""
    return narrowed(
        sql.replace(
            f"SELECT {metering.RECORD_COLUMNS} FROM unnest", f"SELECT {_COLUMNS} FROM unnest"
        )
        .replace(array_placeholders(metering._RECORD_TYPES), array_placeholders(_TYPES))
        .replace(f"({metering._RECORD_NAMES}, n)", f"({_COLUMNS.replace(' ', '')}, n)")
    )


_original_migrate = postgres.PostgresStore._migrate
_original_params = metering._records_params
_original_insert_sql = metering._insert_records_sql
postgres.PostgresStore._migrate = _migrate  # type: ignore[method-assign]
metering._records_params = _records_params
metering._insert_records_sql = _insert_records_sql  # type: ignore[assignment]
metering._INSERT_RECORDS_PG = _narrowed_unnest(metering._INSERT_RECORDS_PG)
metering._CLAIMS_PG = _narrowed_unnest(metering._CLAIMS_PG)
metering._INSERT_RECORD_AND_TOKEN_PG = metering._INSERT_RECORD_AND_TOKEN_PG.replace(
    _original_insert_sql(1), _insert_records_sql(1)
)
metering._RECORD_TYPES = _TYPES  # type: ignore[assignment]

if __name__ == "__main__":
    from marketmeter.cli import main

    sys.argv[0] = "marketmeter"
    main()
