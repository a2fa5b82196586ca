"""psycopg 3 or asyncpg — and psycopg's pipeline mode — on marketmeter's PostgreSQL write
path, measured on the work marketmeter gives them: groups of BatchMeterUsage units, each
unit the insert marketmeter sends (25 records of a batch, one array a column, `ON CONFLICT
… DO NOTHING RETURNING record_id`), the units of a group in one transaction, one group at
a time on one connection — as `store/postgres.py` runs them under group commit.

    python bench/pg_drivers.py [--groups 300] [--group-size 8] [--rounds 3]

Each driver gets a database of its own (marketmeter's schema) and the same records, in
alternating rounds on one PostgreSQL with its defaults (fsync, synchronous_commit); the
best round of each is reported: records/s, and the client's CPU per unit (the driver's
share of a worker's time, which the server's Python competes with).

- `psycopg`: what marketmeter runs — binary parameters, one round trip per unit.
- `psycopg pipeline`: the units of a group sent in psycopg's pipeline mode: one round
  trip for the group, the answers read after.
- `pipeline, each read`: pipeline mode, but each unit's answer read before the next unit
  is sent, as a unit of marketmeter's needs its answer (only BEGIN and COMMIT ride along).
- `asyncpg`: its prepared statement per unit, on its own event loop (its binary codecs
  are written in Cython).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from tests.postgres import TemporaryPostgres, find_bindir  # noqa: E402

from marketmeter.domain.models import MeteringRecord, SlotKey  # noqa: E402
from marketmeter.domain.quantities import Quantity  # noqa: E402
from marketmeter.store.factory import open_store  # noqa: E402
from marketmeter.store.postgres import to_pg  # noqa: E402
from marketmeter.store.sql.metering import (  # noqa: E402
    _INSERT_RECORDS_PG,
    _RECORD_TYPES,
    _records_params,
)

BATCH = 25
HOUR = datetime(2026, 11, 2, 9, tzinfo=UTC)

Unit = list[list[Any]]  # one array a column
Group = list[Unit]


def workload(groups: int, group_size: int) -> list[Group]:
    """Distinct slots, 25 customers a batch spread over the customers, each record with
    its own timestamp in the hour (the benchmark's scattered pattern)."""
    width = len(_RECORD_TYPES)
    made: list[Group] = []
    n = 0
    for _ in range(groups):
        group: Group = []
        for _ in range(group_size):
            records = []
            for _ in range(BATCH):
                customer = (n * 7_919) % 1_000_003
                records.append(
                    MeteringRecord(
                        record_id=str(uuid.uuid4()),
                        operation="BatchMeterUsage",
                        slot=SlotKey("benchsaas", f"6{customer:011d}", "", "", "users", HOUR),
                        timestamp=HOUR + timedelta(seconds=n % 3_600),
                        quantity=Quantity.from_integer(n % 100 + 1),
                        allocations=None,
                        customer_identifier=f"cust{customer:07d}",
                        license_arn=f"arn:aws:license-manager::6{customer:011d}:license:l-1",
                        received_at=HOUR + timedelta(minutes=70),
                    )
                )
                n += 1
            params = _records_params(records)
            group.append([params[i::width] for i in range(width)])
        made.append(group)
    return made


@dataclass
class Measured:
    seconds: float
    cpu: float
    stored: int


GroupRun = Callable[[psycopg.Connection[Any], str, Group], int]


def _with_psycopg(url: str, groups: list[Group], run_group: GroupRun) -> Measured:
    """Every group by `run_group` (the records it stored) on one connection, timed."""
    sql = to_pg(_INSERT_RECORDS_PG)
    stored = 0
    with psycopg.connect(url, autocommit=True) as conn:
        started, cpu = time.perf_counter(), time.process_time()
        for group in groups:
            stored += run_group(conn, sql, group)
        return Measured(time.perf_counter() - started, time.process_time() - cpu, stored)


def _one_by_one(conn: psycopg.Connection[Any], sql: str, group: Group) -> int:
    with conn.transaction():
        return sum(len(conn.execute(sql, unit).fetchall()) for unit in group)


def _pipelined(conn: psycopg.Connection[Any], sql: str, group: Group) -> int:
    with conn.pipeline(), conn.transaction():
        cursors = [conn.execute(sql, unit) for unit in group]
    return sum(len(cursor.fetchall()) for cursor in cursors)


def _pipelined_each_read(conn: psycopg.Connection[Any], sql: str, group: Group) -> int:
    with conn.pipeline(), conn.transaction():
        return sum(len(conn.execute(sql, unit).fetchall()) for unit in group)


def run_psycopg(url: str, groups: list[Group]) -> Measured:
    return _with_psycopg(url, groups, _one_by_one)


def run_psycopg_pipeline(url: str, groups: list[Group]) -> Measured:
    return _with_psycopg(url, groups, _pipelined)


def run_psycopg_pipeline_each(url: str, groups: list[Group]) -> Measured:
    return _with_psycopg(url, groups, _pipelined_each_read)


def run_asyncpg(url: str, groups: list[Group]) -> Measured:
    import asyncpg

    numbered = _INSERT_RECORDS_PG
    for i in range(1, len(_RECORD_TYPES) + 1):
        numbered = numbered.replace("?", f"${i}", 1)

    async def main() -> Measured:
        conn = await asyncpg.connect(url)
        try:
            statement = await conn.prepare(numbered)
            stored = 0
            started, cpu = time.perf_counter(), time.process_time()
            for group in groups:
                async with conn.transaction():
                    for unit in group:
                        stored += len(await statement.fetch(*unit))
            return Measured(time.perf_counter() - started, time.process_time() - cpu, stored)
        finally:
            await conn.close()

    return asyncio.run(main())


DRIVERS: dict[str, Callable[[str, list[Group]], Measured]] = {
    "psycopg": run_psycopg,
    "psycopg pipeline": run_psycopg_pipeline,
    "pipeline, each read": run_psycopg_pipeline_each,
    "asyncpg": run_asyncpg,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--group-size", type=int, default=8, help="units (batches) a group")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL is not installed (make test installs it)")
    pg = TemporaryPostgres(bindir, durable=True)
    pg.start()
    try:
        groups = workload(args.groups, args.group_size)
        units = args.groups * args.group_size
        best: dict[str, Measured] = {}
        for round_ in range(1, args.rounds + 1):
            for name, run in DRIVERS.items():
                url = pg.create_database("drivers")
                open_store(url).close()  # marketmeter's schema
                measured = run(url, groups)
                assert measured.stored == units * BATCH, (name, measured.stored)
                rate = measured.stored / measured.seconds
                print(
                    f"round {round_}, {name:19} {rate:9,.0f} records/s, "
                    f"client CPU {measured.cpu / units * 1e6:5,.0f} µs a unit",
                    flush=True,
                )
                if name not in best or measured.seconds < best[name].seconds:
                    best[name] = measured
        base = best["psycopg"]
        print(f"\nbest of {args.rounds} rounds, groups of {args.group_size} batches of {BATCH}:")
        for name, measured in best.items():
            print(
                f"  {name:19} {measured.stored / measured.seconds:9,.0f} records/s "
                f"({base.seconds / measured.seconds:4.2f}× psycopg), client CPU "
                f"{measured.cpu / units * 1e6:5,.0f} µs a unit"
            )
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
