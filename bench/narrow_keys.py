"""Would narrower keys close the gap between scattered and in-order batches on SQLite?
Measured at the SQL level, before a migration of both stores is written for it.

Two tables in SQLite files of their own, in WAL mode with synchronous=NORMAL as
marketmeter opens them, each pre-filled with the same records (the benchmark's 40,000
customers × 6 dimensions, `--hours` hours):

- `text keys`: the slot's unique key as marketmeter has it — product code, hour,
  customer account, resource, license key, dimension, as text (and the record id's
  unique key);
- `integer keys`: the same key of integer ids (product, customer, dimension looked up
  in tables of their own), as the performance issue proposes;
- `looked-up keys`: the key as (hour, one integer id of the rest), the id made and looked
  up by the statements themselves (two a record here: marketmeter would send the ids'
  statement once a batch, but each record would still probe the ids' text index).

Then the records of one more hour are inserted as marketmeter's group commit writes them
(groups of 32 batches of 25 records, one transaction and one commit a group), once in
order (consecutive customers, all dimensions of one) and once scattered (25 customers
spread over all, one dimension each), on fresh copies. Reported: records/s of each, the
scattered ÷ in-order ratio per schema, and the WAL bytes written per record.

    python bench/narrow_keys.py [--hours 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

CUSTOMERS = 40_000
DIMENSIONS = 6
BATCH = 25
GROUP = 32
PRODUCT = "benchsaas0000000000000001"
HOUR_MS = 3_600_000
FIRST_HOUR = 1_790_000_000_000 // HOUR_MS * HOUR_MS

TEXT_SCHEMA = """
CREATE TABLE records (
    seq INTEGER PRIMARY KEY, record_id TEXT NOT NULL UNIQUE,
    product_code TEXT NOT NULL, hour INTEGER NOT NULL, customer TEXT NOT NULL,
    resource TEXT NOT NULL, license_key TEXT NOT NULL, dimension TEXT NOT NULL,
    quantity INTEGER NOT NULL, timestamp INTEGER NOT NULL,
    UNIQUE (product_code, hour, customer, resource, license_key, dimension)
);
"""
INTEGER_SCHEMA = """
CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE records (
    seq INTEGER PRIMARY KEY, record_id TEXT NOT NULL UNIQUE,
    product_id INTEGER NOT NULL, hour INTEGER NOT NULL, customer_id INTEGER NOT NULL,
    resource_id INTEGER NOT NULL, license_id INTEGER NOT NULL, dimension_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL, timestamp INTEGER NOT NULL,
    UNIQUE (product_id, hour, customer_id, resource_id, license_id, dimension_id)
);
"""
LOOKUP_SCHEMA = """
CREATE TABLE meter_keys (
    id INTEGER PRIMARY KEY, product_code TEXT NOT NULL, customer TEXT NOT NULL,
    resource TEXT NOT NULL, license_key TEXT NOT NULL, dimension TEXT NOT NULL,
    UNIQUE (product_code, customer, resource, license_key, dimension)
);
CREATE TABLE records (
    seq INTEGER PRIMARY KEY, record_id TEXT NOT NULL UNIQUE, meter_key INTEGER NOT NULL,
    product_code TEXT NOT NULL, hour INTEGER NOT NULL, customer TEXT NOT NULL,
    resource TEXT NOT NULL, license_key TEXT NOT NULL, dimension TEXT NOT NULL,
    quantity INTEGER NOT NULL, timestamp INTEGER NOT NULL,
    UNIQUE (hour, meter_key)
);
"""
"""The slot's key as (hour, an integer id of the rest), the id looked up by the statement
itself in a small table of its own (made there by the first record of its kind): no
cache in the server that a restore or a reset could leave stale. The text columns stay
in the row, for reads."""
LOOKUP_KEY = (
    "INSERT INTO meter_keys (product_code, customer, resource, license_key, dimension) "
    "VALUES (?, ?, '', '', ?) ON CONFLICT DO NOTHING"
)
LOOKUP_INSERT = (
    "INSERT INTO records (record_id, meter_key, product_code, hour, customer, resource, "
    "license_key, dimension, quantity, timestamp) SELECT ?, id, product_code, ?, customer, "
    "'', '', dimension, ?, ? FROM meter_keys WHERE product_code = ? AND customer = ? "
    "AND resource = '' AND license_key = '' AND dimension = ? "
    "ON CONFLICT DO NOTHING RETURNING record_id"
)
TEXT_INSERT = (
    "INSERT INTO records (record_id, product_code, hour, customer, resource, license_key, "
    "dimension, quantity, timestamp) VALUES (?, ?, ?, ?, '', '', ?, ?, ?) "
    "ON CONFLICT DO NOTHING RETURNING record_id"
)
INTEGER_INSERT = (
    "INSERT INTO records (record_id, product_id, hour, customer_id, resource_id, license_id, "
    "dimension_id, quantity, timestamp) VALUES (?, 1, ?, ?, 0, 0, ?, ?, ?) "
    "ON CONFLICT DO NOTHING RETURNING record_id"
)

Row = tuple[int, int, int]  # hour, customer, dimension
_ids = itertools.count(1)


def record_id() -> str:
    """Ids that grow with time, as marketmeter's (UUID version 7) do: each lands at the end
    of the id's unique index (a random uuid4 would scatter those inserts too)."""
    n = next(_ids)
    return f"{0x019A_0000_0000 + n // 4096:012x}-7{n % 4096:03x}-8000-{n:012x}"


def customer(i: int) -> str:
    return f"6{i:011d}"


def text_params(rows: list[Row]) -> list[tuple[object, ...]]:
    return [(record_id(), PRODUCT, h, customer(c), f"saas_dim_{d}", 1, h + 1) for h, c, d in rows]


def integer_params(rows: list[Row]) -> list[tuple[object, ...]]:
    # (the ids of a customer and a dimension, as a cache in the server would hold them)
    return [(record_id(), h, c + 1, d + 1, 1, h + 1) for h, c, d in rows]


def lookup_params(rows: list[Row]) -> list[tuple[object, ...]]:
    return [(record_id(), h, 1, h + 1, PRODUCT, customer(c), f"saas_dim_{d}") for h, c, d in rows]


def insert_lookup(conn: sqlite3.Connection, row: tuple[object, ...]) -> None:
    conn.execute(LOOKUP_KEY, row[4:])
    conn.execute(LOOKUP_INSERT, row).fetchall()


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def insert_text(conn: sqlite3.Connection, row: tuple[object, ...]) -> None:
    conn.execute(TEXT_INSERT, row).fetchall()


def insert_integer(conn: sqlite3.Connection, row: tuple[object, ...]) -> None:
    conn.execute(INTEGER_INSERT, row).fetchall()


Params = Callable[[list[Row]], list[tuple[object, ...]]]
Insert = Callable[[sqlite3.Connection, tuple[object, ...]], None]
LAYOUTS: dict[str, tuple[str, Params, Insert]] = {
    "text keys": (TEXT_SCHEMA, text_params, insert_text),
    "integer keys": (INTEGER_SCHEMA, integer_params, insert_integer),
    "looked-up keys": (LOOKUP_SCHEMA, lookup_params, insert_lookup),
}
"""Each layout's schema, its parameters of rows, and its insert of one record (a statement
a record; two for looked-up keys)."""


def prefill(path: Path, layout: str, hours: int) -> None:
    schema, params, insert = LAYOUTS[layout]
    conn = connect(path)
    conn.executescript(schema)
    if layout == "integer keys":
        conn.executemany(
            "INSERT INTO names (id, name) VALUES (?, ?)",
            [(c + 1, customer(c)) for c in range(CUSTOMERS)],
        )
    for h in range(hours):
        hour = FIRST_HOUR + h * HOUR_MS
        rows = [(hour, c, d) for c in range(CUSTOMERS) for d in range(DIMENSIONS)]
        conn.execute("BEGIN")
        for row in params(rows):
            insert(conn, row)
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def batches(hour: int, scattered: bool, count: int) -> list[list[Row]]:
    if not scattered:
        rows = [(hour, c, d) for c in range(CUSTOMERS) for d in range(DIMENSIONS)]
        return [rows[i : i + BATCH] for i in range(0, count * BATCH, BATCH)]
    rng = random.Random(7)
    order = list(range(CUSTOMERS))
    made = []
    for b in range(count):
        if b % (CUSTOMERS // BATCH) == 0:
            rng.shuffle(order)
        start = (b % (CUSTOMERS // BATCH)) * BATCH
        dimension = b // (CUSTOMERS // BATCH) % DIMENSIONS
        made.append([(hour, c, dimension) for c in order[start : start + BATCH]])
    return made


def run(path: Path, layout: str, work: list[list[Row]]) -> tuple[float, float]:
    """Records/s, and WAL bytes written per record."""
    _, params, insert = LAYOUTS[layout]
    conn = connect(path)
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # checkpointed below: the WAL measured
    prepared = [params(batch) for batch in work]
    wal = Path(str(path) + "-wal")
    written = 0
    started = time.perf_counter()
    for g in range(0, len(prepared), GROUP):
        conn.execute("BEGIN IMMEDIATE")
        for batch in prepared[g : g + GROUP]:
            for row in batch:
                insert(conn, row)
        conn.execute("COMMIT")
        if wal.exists() and wal.stat().st_size > 64 * 2**20:
            written += wal.stat().st_size
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    took = time.perf_counter() - started
    written += wal.stat().st_size if wal.exists() else 0
    conn.close()
    records = sum(map(len, work))
    return records / took, written / records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=int, default=20, help="hours of records pre-filled")
    parser.add_argument("--batches", type=int, default=3_200, help="batches timed")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="marketmeter-keys-"))
    try:
        templates = {}
        for name in LAYOUTS:
            started = time.perf_counter()
            templates[name] = work / f"{name.split()[0]}.db"
            prefill(templates[name], name, args.hours)
            size = templates[name].stat().st_size / 2**20
            print(
                f"· {name}: {args.hours * CUSTOMERS * DIMENSIONS:,} records pre-filled, "
                f"{size:,.0f} MiB, in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
        hour = FIRST_HOUR + args.hours * HOUR_MS
        best: dict[tuple[str, str], tuple[float, float]] = {}
        for round_ in range(1, args.rounds + 1):
            for name, template in templates.items():
                for pattern in ("in order", "scattered"):
                    copy = work / "run.db"
                    shutil.copyfile(template, copy)
                    rate, wal = run(
                        copy,
                        name,
                        batches(hour, pattern == "scattered", args.batches),
                    )
                    os.remove(copy)
                    print(
                        f"round {round_}, {name}, {pattern}: {rate:,.0f} records/s, "
                        f"{wal:,.0f} WAL bytes a record",
                        flush=True,
                    )
                    key = (name, pattern)
                    if key not in best or rate > best[key][0]:
                        best[key] = (rate, wal)
        print(f"\nbest of {args.rounds} rounds:")
        for name in templates:
            ordered, scattered = best[(name, "in order")], best[(name, "scattered")]
            print(
                f"  {name:14} in order {ordered[0]:8,.0f} records/s ({ordered[1]:5,.0f} B WAL), "
                f"scattered {scattered[0]:8,.0f} ({scattered[1]:5,.0f} B WAL): "
                f"scattered ÷ in order {scattered[0] / ordered[0]:.2f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
