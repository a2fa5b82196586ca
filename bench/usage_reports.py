"""Usage reports over a database of many records (10 million by default): how long each
report takes, in-process, through the same function the CLI and the admin API call.

The database is generated in SQL (records of `customers` × 4 dimensions × hours, untagged,
and the rollups summed from them by GROUP BY on PostgreSQL, by one fold of them all on
SQLite), so that it takes a minute, not an hour; each report's total is checked against
the records' own sum before it is timed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import Ratio  # noqa: E402

from marketmeter.domain.models import Account, Product  # noqa: E402
from marketmeter.domain.ports import Store  # noqa: E402
from marketmeter.domain.usage import usage_report  # noqa: E402
from marketmeter.store.factory import open_store  # noqa: E402

PRODUCT = "reportbench00000000000001"
DIMENSIONS = 4
START = datetime(2026, 1, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)


def _fill_sql(dialect: str, customers: int, records: int) -> list[str]:
    """Records i = 0 … records-1: customer i % customers, dimension (i / customers) % 4,
    hour i / (customers × 4); quantity 1–7 units and, every third record, a half."""
    per_hour = customers * DIMENSIONS
    if dialect == "sqlite":
        numbers = (
            f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < "
            f"{records - 1}) "
        )
        source = "n"
        account = "printf('%012d', i - (i / {c}) * {c})"
        text = "CAST(i AS TEXT)"
    else:
        numbers = ""
        source = f"generate_series(CAST(0 AS BIGINT), {records - 1}) AS n(i)"
        account = "lpad(CAST(i - (i / {c}) * {c} AS TEXT), 12, '0')"
        text = "CAST(i AS TEXT)"
    account = account.format(c=customers)
    if dialect == "sqlite":
        month = "CAST(strftime('%s', hour / 1000, 'unixepoch', 'start of month') AS INTEGER) * 1000"
    else:
        month = (
            "CAST(EXTRACT(EPOCH FROM date_trunc('month', to_timestamp(hour / 1000) AT TIME ZONE "
            "'UTC')) AS BIGINT) * 1000"
        )
    hour = f"({START_MS} + (i / {per_hour}) * 3600000)"
    # ("%" is a placeholder's mark for psycopg: remainders by hand)
    micros = (
        "((i - (i / 7) * 7) + 1) * 1000000 + (CASE WHEN i - (i / 3) * 3 = 0 THEN 500000 ELSE 0 END)"
    )
    records_sql = (
        f"{numbers}INSERT INTO metering_records (record_id, product_code, "
        "customer_aws_account_id, resource, license_key, dimension, hour, operation, "
        "timestamp, quantity_micros, quantity_text, quantity_as_decimal, allocations, "
        "customer_identifier, license_arn, received_at) "
        f"SELECT 'r' || {text}, '{PRODUCT}', {account}, '', '', "
        f"'dim' || CAST(i / {customers} - (i / {per_hour}) * {DIMENSIONS} AS TEXT), {hour}, "
        "'BatchMeterUsage', "
        f"{hour} + 60000, {micros}, '0', 1, NULL, 'cust' || CAST(i - (i / {customers}) * "
        f"{customers} AS TEXT), "
        f"'arn', {hour} + 120000 FROM {source}"
    )
    if dialect == "sqlite":  # the rollups, in a file of their own: `generate` folds them
        return [records_sql]
    return [
        records_sql,
        f"INSERT INTO usage_by_day SELECT product_code, {month}, customer_aws_account_id, "
        "customer_identifier, dimension, '', (hour / 86400000) * 86400000, "
        "SUM(quantity_micros / 1000000), SUM(quantity_micros - quantity_micros / 1000000 * "
        "1000000), COUNT(*), COUNT(*) FROM metering_records GROUP BY 1, 2, 3, 4, 5, 7",
        "INSERT INTO usage_by_hour SELECT product_code, hour, dimension, '', "
        "CAST(customer_aws_account_id AS BIGINT) - CAST(customer_aws_account_id AS BIGINT) / 16 "
        "* 16, SUM(quantity_micros / 1000000), "
        "SUM(quantity_micros - quantity_micros / 1000000 * 1000000), COUNT(*), COUNT(*) "
        "FROM metering_records GROUP BY 1, 2, 3, 5",
        # The rollups above are what folding the records would make, at once: they are
        # marked folded (this transaction's id below the mark), or reports would count
        # them twice.
        "UPDATE usage_folded SET below_xid = pg_current_xact_id()::text::bigint + 1",
    ]


def generate(url: str, customers: int, records: int) -> Store:
    store = open_store(url)
    with store.transaction() as tx:
        tx.upsert_account(Account("111122223333"))
        tx.upsert_product(
            Product(PRODUCT, "111122223333", "saas", tuple(f"dim{d}" for d in range(DIMENSIONS)))
        )
        run = tx._runner()  # type: ignore[attr-defined]  # the bench's own SQL
        for sql in _fill_sql(run.dialect, customers, records):
            run.execute(sql, ())
    if url.startswith("sqlite"):
        store.fold_usage(None)  # type: ignore[attr-defined]
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url.split("?", maxsplit=1)[0], autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    return store


def records_total(store: Store) -> Any:
    run = store._runner()  # type: ignore[attr-defined]
    row = run.fetchone("SELECT SUM(quantity_micros), COUNT(*) FROM metering_records", ())
    return int(row[0]), int(row[1])


def best_of(fn: Callable[[], Any], rounds: int = 3) -> tuple[float, Any]:
    fn()  # warm the caches, as a server that answered reports before
    times = []
    result = None
    for _ in range(rounds):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def report_timings(url: str, store_name: str, customers: int, records: int) -> list[Ratio]:
    print(f"· generating {records:,} records ({store_name})", flush=True)
    started = time.monotonic()
    store = generate(url, customers, records)
    print(f"  generated in {time.monotonic() - started:.0f} s", flush=True)
    micros, count = records_total(store)
    assert count == records
    hours = records // (customers * DIMENSIONS)
    end = START + timedelta(hours=hours)
    cases: list[tuple[str, dict[str, Any]]] = [
        (
            "by month, per customer and dimension, every record",
            {"by": "month", "start": START, "end": end},
        ),
        (
            "by day, per dimension, every record",
            {"by": "day", "group": ["dimension"], "start": START, "end": end},
        ),
        (
            "by hour, per dimension, every record",
            {"by": "hour", "group": ["dimension"], "start": START, "end": end},
        ),
        (
            "by hour, per customer and dimension, one day",
            {"by": "hour", "start": START, "end": START + timedelta(days=1)},
        ),
    ]
    found = []
    for label, options in cases:
        took, report = best_of(lambda o=options: usage_report(store, PRODUCT, **o))
        if options["end"] == end:
            exact = int(report.total * 1_000_000)
            assert exact == micros, (label, exact, micros)
        print(
            f"· report {label}, {store_name}: {took * 1000:.0f} ms ({len(report.rows):,} rows)",
            flush=True,
        )
        found.append(
            Ratio(
                f"usage report over {records / 1e6:g} M records, {label}, {store_name} (s)",
                took,
                "≤ 1",
                took <= 1,
            )
        )
    store.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--postgres-url", default="", help="a database to fill (else SQLite only)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        found = report_timings(
            f"sqlite:///{work}/reports.db", "SQLite", args.customers, args.records
        )
        if args.postgres_url:
            found += report_timings(args.postgres_url, "PostgreSQL", args.customers, args.records)
    for ratio in found:
        print(ratio.row())


if __name__ == "__main__":
    main()
