"""The database round trips of a request, counted by the databases themselves: SQLite's
statement trace, PostgreSQL's pg_stat_statements. They must not grow: a request whose
catalog is cached costs its writes only, and the customers not cached cost one query for
the whole batch, whatever their number.

The requests run as a server runs them (`*_async`, SQLite's group commit on an event
loop), through the catalog cache, with the caller's access key looked up as the
authentication does.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from marketmeter.clock import FixedClock
from marketmeter.domain.catalog_file import parse_catalog
from marketmeter.domain.models import UsageRecord
from marketmeter.domain.ports import Store
from marketmeter.domain.service import MeteringService
from marketmeter.store.cache import CachedStore
from marketmeter.store.postgres import PostgresStore
from marketmeter.store.sql import FoldSchedule
from marketmeter.store.sqlite import SqliteStore
from tests.conftest import NOW
from tests.factories import KEYS, SAAS, caller, make_catalog, meter, record
from tests.postgres import TemporaryPostgres

CUSTOMERS = 200
NO_FOLDS = FoldSchedule(rows=2**62, seconds=math.inf)

# The most each request may cost. SQLite counts statements (each a call into the library,
# no network): a group commit's BEGIN, the unit's SAVEPOINT and RELEASE, its writes, COMMIT.
# PostgreSQL counts statements sent: BEGIN, the writes, COMMIT.
EXPECTED = {
    # The stored records' sums are logged by a trigger of the statement that stores them.
    # (The log's folds into the rollups come every few thousand rows, or a second: off
    # here, timed in bench/.)
    "sqlite": {"batch, cached": 5, "batch, 25 not cached": 6, "meter, with a ClientToken": 6},
    # MeterUsage's record and ClientToken: one statement.
    "postgresql": {"batch, cached": 3, "batch, 25 not cached": 4, "meter, with a ClientToken": 3},
}


def account(i: int) -> str:
    return f"5{i:011d}"


def catalog() -> dict[str, Any]:
    document = make_catalog()
    document["subscriptions"] += [
        {"product_code": SAAS, "customer_aws_account_id": account(i)} for i in range(CUSTOMERS)
    ]
    return document


class TracedSqliteStore(SqliteStore):
    """The SQLite store, every statement of its connections traced (by SQLite itself) —
    but for the checkpointer's, and for the programs of triggers, which run inside the
    statement that fired them and which Python's sqlite3 reports as that statement again,
    once for each run."""

    def __init__(self, path: Path) -> None:
        self.statements: list[str] = []
        super().__init__(path)

    def _connect(self, *, rollups: bool = False) -> sqlite3.Connection:
        conn = super()._connect(rollups=rollups)
        conn.set_trace_callback(self._trace)
        return conn

    def _trace(self, statement: str) -> None:
        if statement.startswith("PRAGMA wal_checkpoint"):
            return  # the checkpointer's, every 50 ms on a thread of its own: no request's
        if not self.statements or self.statements[-1] != statement:
            self.statements.append(statement)


class Counter:
    def __init__(self, kind: str, store: Store, count: Callable[[], int]) -> None:
        self.kind = kind
        self.store = store
        self._count = count

    def count(self) -> int:
        return self._count()


@pytest.fixture(params=["sqlite", "postgresql"])
def counter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Counter]:
    if request.param == "sqlite":
        traced = TracedSqliteStore(tmp_path / "trips.db")
        traced.folds = NO_FOLDS
        yield Counter("sqlite", traced, lambda: len(traced.statements))
        traced.close()
        return
    pg: TemporaryPostgres = request.getfixturevalue("postgres")
    url = pg.create_database("trips")
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

        def statements() -> int:
            row = admin.execute(
                "SELECT COALESCE(SUM(calls), 0) FROM pg_stat_statements WHERE dbid = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND query NOT LIKE %s",
                ("%pg_stat_statements%",),
            ).fetchone()
            assert row is not None
            return int(row[0])

        store = PostgresStore(url)
        store.folds = NO_FOLDS
        yield Counter("postgresql", store, statements)
        store.close()


def measure(counter: Counter, requests: list[Callable[[], Awaitable[Any]]]) -> float:
    """The statements per request, on average, over `requests` run one after another."""

    async def main() -> tuple[int, float]:
        if isinstance(counter.store, SqliteStore):
            counter.store.group_commit_on(asyncio.get_running_loop())
        before = counter.count()
        started = time.monotonic()
        for request in requests:
            await request()
        return counter.count() - before, time.monotonic() - started

    counted, elapsed = asyncio.run(main())
    if counter.kind == "postgresql":
        # The catalog listener checks the version once a second on a connection of its own.
        counted -= min(counted, math.ceil(elapsed) + 1)
    return counted / len(requests)


def service_for(counter: Counter, **cache: int) -> MeteringService:
    service = MeteringService(counter.store, FixedClock(NOW))
    service.apply_catalog(parse_catalog(catalog()))
    return MeteringService(CachedStore(counter.store, **cache), FixedClock(NOW))


def batch(service: MeteringService, customers: range, hour: int) -> Callable[[], Awaitable[Any]]:
    records: list[UsageRecord] = [
        record(NOW - timedelta(hours=hour), account=account(i)) for i in customers
    ]

    async def send() -> None:
        service.access_key(KEYS["seller"][0])
        outcome = await service.batch_meter_usage_async(caller(), SAAS, records)
        assert {r.status for r in outcome.results} == {"Success"}

    return send


def test_a_batch_of_cached_customers_costs_its_writes(counter: Counter) -> None:
    service = service_for(counter)
    measure(counter, [batch(service, range(25), 1)])  # loads the catalog
    per_request = measure(counter, [batch(service, range(25), h) for h in range(2, 12)])
    assert per_request <= EXPECTED[counter.kind]["batch, cached"]


def test_customers_not_cached_cost_one_query_per_batch(counter: Counter) -> None:
    service = service_for(counter, warm_limit=0)  # never the whole product: by customer
    measure(counter, [batch(service, range(25), 1)])  # the key and the product
    # Each request: 5 customers cached by the one before it, 20 seen for the first time.
    requests = [batch(service, range(i * 20, i * 20 + 25), 1 + i) for i in range(1, 8)]
    per_request = measure(counter, requests)
    assert per_request <= EXPECTED[counter.kind]["batch, 25 not cached"]


def test_a_meter_usage_costs_its_claims(counter: Counter) -> None:
    service = service_for(counter)
    buyer = caller("buyer")

    def metered(hour: int) -> Callable[[], Awaitable[Any]]:
        async def send() -> None:
            service.access_key(KEYS["buyer"][0])
            request = meter(NOW - timedelta(hours=hour), client_token=str(uuid.uuid4()))
            await service.meter_usage_async(buyer, request)

        return send

    measure(counter, [metered(0)])
    per_request = measure(counter, [metered(h) for h in range(1, 6)])
    assert per_request <= EXPECTED[counter.kind]["meter, with a ClientToken"]


def test_a_retried_batch_finds_the_records_it_stored_by_the_slot_index(tmp_path: Path) -> None:
    store = TracedSqliteStore(tmp_path / "retry.db")
    store.folds = NO_FOLDS
    counter = Counter("sqlite", store, lambda: len(store.statements))
    send = batch(service_for(counter), range(25), 1)
    measure(counter, [send])
    store.statements.clear()
    measure(counter, [send])  # the same records again: each slot is taken, by itself
    reads = [s for s in store.statements if "FROM" in s and "metering_records" in s]
    assert reads, store.statements
    conn = sqlite3.connect(tmp_path / "retry.db")
    plans = [row[3] for read in reads for row in conn.execute(f"EXPLAIN QUERY PLAN {read}")]
    conn.close()
    assert any("USING INDEX" in step for step in plans), plans
    assert not [step for step in plans if step.startswith("SCAN") and "metering_records" in step]
    assert not [step for step in plans if step == "SCAN m"]
    store.close()
