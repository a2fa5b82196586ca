"""Usage reports read rollups kept by the transaction that stores records; their totals
must equal the records' own, exactly, on both stores — checked here against an
independent sum of the raw records, for random records, groupings and ranges."""

from __future__ import annotations

import random
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketmeter.domain.models import Allocation, MeteringRecord, SlotKey, Tag
from marketmeter.domain.ports import Store, UsageSlice
from marketmeter.domain.quantities import Quantity
from marketmeter.domain.usage import tag_sets, usage_report
from marketmeter.store.factory import open_store
from marketmeter.store.migrations import migrations_for
from marketmeter.store.postgres import PostgresRunner
from marketmeter.store.sql import FoldSchedule
from marketmeter.store.sql.metering import RECORD_COLUMNS, _records_params
from marketmeter.store.sql.migrate import statements
from marketmeter.store.sql.usage import (
    FOLD_LIMIT,
    FoldMarks,
    add_usage,
    fold_usage,
    pg_fold_statement,
    sums_query,
)
from marketmeter.store.sqlite import SqliteRunner, SqliteStore
from marketmeter.store.sqlite_rollups import rollups_path
from tests.postgres import TemporaryPostgres

START = datetime(2026, 10, 29, tzinfo=UTC)  # the span crosses a month's end
SPAN_HOURS = 24 * 6
CUSTOMERS = [("cust-a", "111122223333"), ("cust-b", "222233334444"), ("", "333344445555")]
TAG_KEYS = ("team", "env")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()


# -- random records ----------------------------------------------------------------------

quantities = st.one_of(
    st.integers(0, 2_147_483_647).map(Quantity.from_integer),
    st.integers(0, 9_999_999_999_999_999).map(
        lambda m: Quantity.from_decimal_string(f"{m // 1_000_000}.{m % 1_000_000:06d}")
    ),
)
tags = st.dictionaries(
    st.sampled_from(TAG_KEYS), st.sampled_from(["a", "b", "<script>x</script>"]), max_size=2
).map(lambda d: tuple(Tag(k, v) for k, v in d.items()))
allocation_lists = st.lists(st.tuples(st.integers(0, 10**12), tags), min_size=1, max_size=3)


@st.composite
def records(draw: st.DrawFn, product: str) -> MeteringRecord:
    identifier, account = draw(st.sampled_from(CUSTOMERS))
    hour = START + timedelta(hours=draw(st.integers(0, SPAN_HOURS - 1)))
    timestamp = hour + timedelta(seconds=draw(st.integers(0, 3599)))
    by_license = draw(st.booleans())
    license_arn = f"arn:aws:license-manager::{account}:license:l-{account}"
    allocated = draw(st.none() | allocation_lists)
    if allocated is None:
        quantity = draw(quantities)
        allocations = None
    else:
        parts = tuple(Allocation(Quantity.from_integer(n), t) for n, t in allocated)
        quantity = Quantity.from_integer(sum(n for n, _ in allocated))
        allocations = parts
    return MeteringRecord(
        record_id=str(uuid.uuid4()),
        operation="BatchMeterUsage",
        slot=SlotKey(
            product,
            account,
            draw(st.sampled_from(["", "AKIAEXAMPLE"])),
            license_arn if by_license else "",
            draw(st.sampled_from(["users", "gb"])),
            hour,
        ),
        timestamp=timestamp,
        quantity=quantity,
        allocations=allocations,
        customer_identifier=identifier,
        license_arn=license_arn,
        received_at=timestamp + timedelta(minutes=1),
    )


def some_records(product: str, n: int, seed: int = 7) -> list[MeteringRecord]:
    """`n` varied records (some tagged, some decimal) of distinct slots, drawn from `seed`."""
    rng = random.Random(seed)
    made: dict[SlotKey, MeteringRecord] = {}
    while len(made) < n:
        identifier, account = rng.choice(CUSTOMERS)
        hour = START + timedelta(hours=rng.randrange(SPAN_HOURS))
        allocations = None
        if rng.random() < 0.5:
            allocations = tuple(
                Allocation(Quantity.from_integer(rng.randrange(100)), (Tag("team", t),))
                for t in rng.sample(["a", "b", "c"], rng.randint(1, 3))
            )
            quantity = Quantity.from_integer(sum(a.quantity.whole for a in allocations))
        else:
            quantity = Quantity.from_decimal_string(f"{rng.randrange(10**6)}.{rng.randrange(10)}")
        slot = SlotKey(product, account, "", "", rng.choice(["users", "gb"]), hour)
        made[slot] = MeteringRecord(
            record_id=str(uuid.uuid4()),
            operation="BatchMeterUsage",
            slot=slot,
            timestamp=hour + timedelta(seconds=rng.randrange(3600)),
            quantity=quantity,
            allocations=allocations,
            customer_identifier=identifier,
            license_arn=f"arn:aws:license-manager::{account}:license:l-{account}",
            received_at=hour + timedelta(hours=1),
        )
    return list(made.values())


# -- the oracle: summed from the raw records -----------------------------------------------


def _floor(at: datetime, by: str) -> datetime:
    at = at.replace(minute=0, second=0, microsecond=0)
    if by == "hour":
        return at
    at = at.replace(hour=0)
    return at if by == "day" else at.replace(day=1)


def expected_rows(
    raw: list[MeteringRecord], by: str, group: list[str], start: datetime, end: datetime
) -> dict[tuple[Any, ...], list[Any]]:
    tag_keys = [g[4:] for g in group if g.startswith("tag:")]
    rows: dict[tuple[Any, ...], list[Any]] = {}
    for r in raw:
        if not start <= r.timestamp.replace(minute=0, second=0, microsecond=0) < end:
            continue
        base: list[tuple[str, Any]] = []
        if "customer" in group:
            base += [
                ("customer_identifier", r.customer_identifier or None),
                ("customer_aws_account_id", r.slot.customer_aws_account_id),
            ]
        if "dimension" in group:
            base.append(("dimension", r.slot.dimension))
        if tag_keys:
            parts = [
                ({t.key: t.value for t in a.tags}, a.quantity.value) for a in (r.allocations or ())
            ] or [({}, r.quantity.value)]
        else:
            parts = [({}, r.quantity.value)]
        for values, quantity in parts:
            keys = (*base, *((f"tag:{k}", values.get(k)) for k in tag_keys))
            row = rows.setdefault((_floor(r.timestamp, by), keys), [Decimal(0), 0])
            row[0] += quantity
            row[1] += 1
    return rows


groups = st.lists(
    st.sampled_from(["customer", "dimension", "tag:team", "tag:env"]), unique=True, max_size=4
)
instants = st.one_of(  # often the whole span: most records inside the range
    st.just(START - timedelta(hours=1)),
    st.just(START + timedelta(hours=SPAN_HOURS + 1)),
    st.integers(-5, SPAN_HOURS * 60 + 300).map(lambda m: START + timedelta(minutes=m)),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_report_totals_equal_the_records_sums(store: Store, data: st.DataObject) -> None:
    product = f"prod-{uuid.uuid4().hex[:8]}"
    batch = data.draw(st.lists(records(product), max_size=40), label="records")
    # Stored in a few transactions; the usage log folded into the rollups between some of
    # them, all of it or its oldest rows only: a report sums rollups and log alike.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(batch)), max_size=3), label="cuts"))
    for start, end in zip([0, *cuts], [*cuts, len(batch)], strict=True):
        with store.transaction() as tx:
            tx.claim_slots(batch[start:end])
        fold = data.draw(st.sampled_from([0, 1, 5, None]), label="fold")
        if fold != 0:
            store.fold_usage(fold)  # type: ignore[attr-defined]
    raw = list(store.iter_records(product))
    by = data.draw(st.sampled_from(["hour", "day", "month"]), label="by")
    group = data.draw(groups, label="group")
    a, b = sorted([data.draw(instants, label="a"), data.draw(instants, label="b")])
    b += timedelta(minutes=1)

    report = usage_report(store, product, by=by, start=a, end=b, group=group)  # type: ignore[arg-type]

    # The range covers whole hours (by hour) or whole days, around [a, b).
    grain = "hour" if by == "hour" else "day"
    assert report.start == _floor(a, grain)
    assert report.start <= a and b <= report.end
    assert report.end - b < timedelta(hours=1 if by == "hour" else 24)
    expected = expected_rows(raw, by, group, report.start, report.end)
    got = {
        (row.period, tuple(row.keys.items())): [row.quantity, row.records] for row in report.rows
    }
    assert got == expected
    assert report.total == sum((q for q, _ in expected.values()), Decimal(0))
    # Rows in order: by period, then by each value of the group in turn, absent ones first.
    order = [
        (row.period, [(v is not None, v or "") for v in row.keys.values()]) for row in report.rows
    ]
    assert order == sorted(order)
    assert all(row.records > 0 for row in report.rows)  # periods without usage have no row


def log_rows(database_url: str) -> int:
    """The rows of the usage log not yet folded into the rollups: its rows (on SQLite,
    above the mark) and the records without allocations not folded yet."""
    if database_url.startswith("sqlite:///"):
        with closing(sqlite_with_rollups(database_url.removeprefix("sqlite:///"))) as conn:
            return sqlite_unfolded(conn)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM usage_pending) + (SELECT count(*) "
            "FROM metering_records WHERE allocations IS NULL "
            "AND logged_by >= (SELECT below_xid FROM usage_folded))"
        ).fetchone()
        assert row is not None
        return int(row[0])


def sqlite_unfolded(conn: sqlite3.Connection) -> int:
    """The log's rows above the rollups' mark and the records without allocations above
    theirs (`conn`: the database, the rollups' file attached as `rollups`, which must
    hold marks: none would make every count below 0)."""
    assert conn.execute("SELECT count(*) FROM rollups.usage_folded").fetchone() == (1,)
    (pending,) = conn.execute(
        "SELECT count(*) FROM usage_pending "
        "WHERE seq > (SELECT pending_seq FROM rollups.usage_folded)"
    ).fetchone()
    (records,) = conn.execute(
        "SELECT count(*) FROM metering_records WHERE allocations IS NULL "
        "AND seq > (SELECT records_seq FROM rollups.usage_folded)"
    ).fetchone()
    return int(pending) + int(records)


def sqlite_with_rollups(path: Path | str) -> sqlite3.Connection:
    """A connection to a SQLite database, its rollups' file attached as `rollups`."""
    conn = sqlite3.connect(path)
    conn.execute("ATTACH DATABASE ? AS rollups", (rollups_path(str(path)),))
    return conn


def month_report(store: Store, product: str) -> dict[tuple[Any, ...], list[Any]]:
    report = usage_report(
        store,
        product,
        by="day",
        start=START,
        end=START + timedelta(days=7),
        group=["customer", "dimension", "tag:team"],
    )
    return {(r.period, tuple(r.keys.items())): [r.quantity, r.records] for r in report.rows}


def expected_month(store: Store, product: str) -> dict[tuple[Any, ...], list[Any]]:
    raw = list(store.iter_records(product))
    return expected_rows(
        raw, "day", ["customer", "dimension", "tag:team"], START, START + timedelta(days=7)
    )


def test_folds_beside_concurrent_inserts_lose_and_double_nothing(
    store: Store, database_url: str
) -> None:
    """Writers store records while others fold the log, a few rows at a time: every row
    is folded exactly once — the rollups alone then hold every record's sums."""
    product = "prod-concurrent"
    chunks = _chunks(some_records(product, 600, seed=11), 15)
    done = threading.Event()

    def insert(mine: list[list[MeteringRecord]]) -> None:
        for chunk in mine:
            with store.transaction() as tx:
                assert tx.claim_slots(chunk) == chunk  # each stored: its own occupant

    def fold() -> None:
        while not done.is_set():
            store.fold_usage(7)  # type: ignore[attr-defined]

    folders = [threading.Thread(target=fold) for _ in range(2)]
    writers = [threading.Thread(target=insert, args=(chunks[i::3],)) for i in range(3)]
    for t in folders + writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    for t in folders:
        t.join()
    store.fold_usage()  # type: ignore[attr-defined]
    assert log_rows(database_url) == 0
    assert store.count_records() == 600
    assert month_report(store, product) == expected_month(store, product)


def _chunks(items: list[MeteringRecord], size: int) -> list[list[MeteringRecord]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def test_a_fold_that_fails_fails_no_write_and_the_next_fold_catches_up(
    store: Store, database_url: str
) -> None:
    """A fold runs when a transaction that stores records makes one due, after its commit
    (PostgreSQL: in a transaction of its own; SQLite: in the rollups' file): if it fails,
    the records are stored all the same and the log keeps their sums."""
    product = "prod-fold-fails"
    fail, unfail = FAIL_FOLDS["sqlite" if database_url.startswith("sqlite") else "postgresql"]
    _admin(database_url, fail)
    store.folds = FoldSchedule(rows=1)  # type: ignore[attr-defined]  # every write folds
    first, second = _chunks(some_records(product, 40, seed=5), 20)
    with store.transaction() as tx:
        assert tx.claim_slots(first) == first
    assert store.count_records() == 20
    assert log_rows(database_url) > 0  # the fold failed: its rows are still in the log
    assert month_report(store, product) == expected_month(store, product)
    _admin(database_url, unfail)
    with store.transaction() as tx:
        assert tx.claim_slots(second) == second
    assert log_rows(database_url) == 0  # folded, the failed fold's rows with them
    assert month_report(store, product) == expected_month(store, product)


FAIL_FOLDS = {
    "sqlite": (
        [
            "CREATE TRIGGER no_folds BEFORE INSERT ON usage_by_day "
            "BEGIN SELECT RAISE(ABORT, 'no folds today'); END"
        ],
        ["DROP TRIGGER no_folds"],
    ),
    "postgresql": (
        [
            "CREATE FUNCTION no_folds() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'no folds today'; END $$",
            "CREATE TRIGGER no_folds BEFORE INSERT ON usage_by_day "
            "FOR EACH ROW EXECUTE FUNCTION no_folds()",
        ],
        ["DROP TRIGGER no_folds ON usage_by_day"],
    ),
}


def _admin(database_url: str, statements: list[str]) -> None:
    if database_url.startswith("sqlite:///"):  # (the rollups live in a file of their own)
        path = rollups_path(database_url.removeprefix("sqlite:///"))
        with closing(sqlite3.connect(path)) as conn:
            for sql in statements:
                conn.execute(sql)
            conn.commit()
        return
    with psycopg.connect(database_url, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def test_a_record_stored_twice_is_summed_once(store: Store) -> None:
    product = "prod-twice"
    [record] = some_records(product, 1)
    with store.transaction() as tx:
        tx.claim_slots([record])
    again = MeteringRecord(
        record_id=str(uuid.uuid4()),
        operation=record.operation,
        slot=record.slot,
        timestamp=record.timestamp,
        quantity=Quantity.from_integer(99),
        allocations=None,
        customer_identifier=record.customer_identifier,
        license_arn=record.license_arn,
        received_at=record.received_at,
    )
    with store.transaction() as tx:
        assert tx.claim_slots([again]) == [record]
    report = usage_report(
        store, product, by="month", start=START, end=START + timedelta(days=10), group=[]
    )
    assert report.total == record.quantity.value
    assert [row.records for row in report.rows] == [1]


def test_a_rolled_back_transaction_adds_nothing(store: Store) -> None:
    product = "prod-rollback"
    [record] = some_records(product, 1)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.claim_slots([record])
        raise RuntimeError("undo")
    report = usage_report(
        store, product, by="month", start=START, end=START + timedelta(days=10), group=[]
    )
    assert report.rows == ()
    assert report.total == 0


def test_records_stored_before_the_rollups_existed_are_added_by_the_migration(
    tmp_path: Path,
) -> None:
    """A database of schema 5 with records in it: opening it migrates and sums them."""
    path = tmp_path / "old.db"
    conn = _sqlite_at_version(path, 5)
    unique = some_records("prod-old", 30)
    placeholders = ", ".join("?" * 16)
    columns = (
        "record_id, product_code, customer_aws_account_id, resource, license_key, dimension, "
        "hour, operation, timestamp, quantity_micros, quantity_text, quantity_as_decimal, "
        "allocations, customer_identifier, license_arn, received_at"
    )
    params = _records_params(unique)  # (the 17th, accepted_late, came with schema 7)
    for i in range(len(unique)):
        conn.execute(
            f"INSERT INTO metering_records ({columns}) VALUES ({placeholders})",
            params[i * 17 : i * 17 + 16],
        )
    conn.commit()
    conn.close()

    store = SqliteStore(path)
    try:
        report = usage_report(
            store,
            "prod-old",
            by="day",
            start=START,
            end=START + timedelta(days=7),
            group=["customer", "tag:team"],
        )
        raw = list(store.iter_records("prod-old"))
        assert len(raw) == len(unique)
        expected = expected_rows(raw, "day", ["customer", "tag:team"], report.start, report.end)
        got = {
            (row.period, tuple(row.keys.items())): [row.quantity, row.records]
            for row in report.rows
        }
        assert got == expected
    finally:
        store.close()


def _sqlite_at_version(path: Path, version: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    _migrate_to(conn.execute, "sqlite", version, "?")
    return conn


def _migrate_to(execute: Callable[..., Any], dialect: str, version: int, mark: str) -> None:
    """Bring an empty database to the schema of `version` (`mark`: the driver's
    placeholder), as a build of that version did."""
    execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    for migration in migrations_for(dialect):
        if migration.version > version:
            break
        for statement in statements(migration.sql):
            execute(statement)
        execute(
            f"INSERT INTO schema_migrations VALUES ({mark}, {mark})",
            (migration.version, migration.name),
        )


def _store_one_by_one(
    execute: Callable[..., Any], records: list[MeteringRecord], mark: str
) -> None:
    """Store `records` as the writer of an older schema did, an INSERT each (`mark`: the
    driver's placeholder), so that the database's own triggers of that schema run."""
    params = _records_params(records)
    values = ", ".join([mark] * 17)
    for i in range(len(records)):
        execute(
            f"INSERT INTO metering_records ({RECORD_COLUMNS}) VALUES ({values})",
            params[i * 17 : (i + 1) * 17],
        )


def _report_matches(store: Store, product: str) -> None:
    assert month_report(store, product) == expected_month(store, product)


def test_records_logged_by_the_old_trigger_are_counted_once_after_the_migration(
    tmp_path: Path,
) -> None:
    """A database of schema 7 (SQLite): its trigger logged the records without
    allocations, some folded and some not. Version 8 reads records as their own log from
    then on: none of those is counted again, and new records are counted."""
    path = tmp_path / "seven.db"
    conn = _sqlite_at_version(path, 7)
    old, new = _chunks(some_records("prod-seven", 60, seed=3), 30)
    _store_one_by_one(conn.execute, old, "?")
    (logged,) = conn.execute("SELECT count(*) FROM usage_pending").fetchone()
    assert logged == sum(1 for r in old if r.allocations is None)  # by the trigger
    add_usage(SqliteRunner(conn), old)  # and those with allocations, as version 7 did
    conn.commit()
    conn.close()

    store = SqliteStore(path)
    try:
        _report_matches(store, "prod-seven")
        store.fold_usage(10)  # some folded, some not
        _report_matches(store, "prod-seven")
        with store.transaction() as tx:
            assert tx.claim_slots(new) == new
        _report_matches(store, "prod-seven")
        store.fold_usage()
        with closing(sqlite_with_rollups(path)) as check:
            assert sqlite_unfolded(check) == 0
        _report_matches(store, "prod-seven")
    finally:
        store.close()


def test_records_stored_after_a_reset_are_counted(store: Store) -> None:
    """A reset empties the records (SQLite numbers them from 1 again) and the rollups:
    what is stored next is reported, folded or not."""
    first, second = _chunks(some_records("prod-reset", 40, seed=9), 20)
    with store.transaction() as tx:
        assert tx.claim_slots(first) == first
    store.fold_usage()  # type: ignore[attr-defined]
    with store.transaction() as tx:
        tx.clear_marketplace()
    _report_matches(store, "prod-reset")  # nothing
    with store.transaction() as tx:
        assert tx.claim_slots(second[:10]) == second[:10]
    _report_matches(store, "prod-reset")  # not folded
    store.fold_usage()  # type: ignore[attr-defined]
    with store.transaction() as tx:
        assert tx.claim_slots(second[10:]) == second[10:]
    _report_matches(store, "prod-reset")  # some folded, some not
    assert len(list(store.iter_records("prod-reset"))) == 20


def test_sqlite_reports_find_the_records_not_folded_by_seq(tmp_path: Path) -> None:
    """The report's part that reads records not folded yet walks `seq` from the last
    folded, never the slot index's range of the whole slice (millions of rows)."""
    store = SqliteStore(tmp_path / "plan.db")
    try:
        for query in (
            UsageSlice("p", START, START + timedelta(days=1), "hours", per_hour=True),
            UsageSlice("p", START, START + timedelta(days=1), "days", by_customer=True),
        ):
            sql, params, _ = sums_query(query, "sqlite", FoldMarks(0, 0))
            with closing(sqlite_with_rollups(tmp_path / "plan.db")) as conn:
                plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            on_records = [step for step in plan if "metering_records" in step]
            assert on_records, plan
            assert all("INTEGER PRIMARY KEY (rowid>?)" in step for step in on_records), plan
    finally:
        store.close()


# -- PostgreSQL: records folded by the transaction that stored them -------------------------


@pytest.fixture
def pg_url(postgres: TemporaryPostgres) -> str:
    return postgres.create_database()


def _unhurried(store: Store) -> Store:
    """No fold unless the test asks for one."""
    store.folds = FoldSchedule(rows=10**9, seconds=10**9)  # type: ignore[attr-defined]
    return store


def test_postgres_a_fold_waits_for_a_transaction_still_running(pg_url: str) -> None:
    """Writers commit out of the order they began in. A fold beside a transaction still
    running folds only what lies below it; once it commits, its records are reported and
    the next fold takes them — none is skipped (the mark passing a transaction that has
    not ended would lose its records from every report) nor counted twice."""
    store = _unhurried(open_store(pg_url))
    try:
        product = "prod-in-flight"
        early, late = _chunks(some_records(product, 40, seed=21), 20)
        running = store.transaction()
        tx = running.__enter__()  # begins first: the lower transaction id
        assert tx.claim_slots(early) == early
        with store.transaction() as other:  # begins and commits while the first runs
            assert other.claim_slots(late) == late
        store.fold_usage()  # type: ignore[attr-defined]
        _report_matches(store, product)  # the late ones only: the early are uncommitted
        assert store.count_records() == 20
        running.__exit__(None, None, None)  # commits
        assert store.count_records() == 40
        _report_matches(store, product)
        # Not folded yet: every record without allocations (the late ones lie above the
        # horizon the fold saw), and the early ones' log rows (one per tag set).
        tagged = sum(len(list(tag_sets(r.allocations, 0))) for r in early if r.allocations)
        untagged = sum(1 for r in early + late if r.allocations is None)
        assert log_rows(pg_url) == untagged + tagged
        store.fold_usage()  # type: ignore[attr-defined]
        assert log_rows(pg_url) == 0
        _report_matches(store, product)
    finally:
        store.close()


def test_postgres_rollups_of_another_cluster_are_summed_again(pg_url: str) -> None:
    """A database restored from another cluster carries transaction ids this one has not
    reached: opening it sums the rollups again, and records stored after are counted."""
    product = "prod-restored"
    first, second = _chunks(some_records(product, 40, seed=23), 20)
    store = _unhurried(open_store(pg_url))
    try:
        with store.transaction() as tx:
            assert tx.claim_slots(first) == first
        store.fold_usage()  # type: ignore[attr-defined]
    finally:
        store.close()
    far = 2**40  # another cluster's ids, ahead of this one's
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE usage_folded SET below_xid = %s", (far,))
        conn.execute("UPDATE metering_records SET logged_by = logged_by + %s", (far,))
    store = _unhurried(open_store(pg_url))
    try:
        _report_matches(store, product)
        with store.transaction() as tx:
            assert tx.claim_slots(second) == second
        _report_matches(store, product)  # stored after the restore: not folded yet
        store.fold_usage()  # type: ignore[attr-defined]
        assert log_rows(pg_url) == 0
        _report_matches(store, product)
    finally:
        store.close()


def test_postgres_records_logged_by_the_old_trigger_are_counted_once_after_the_migration(
    pg_url: str,
) -> None:
    """A database of schema 8: its trigger logged the records without allocations into
    usage_pending. Version 10 reads records as their own log from then on: the logged ones
    are counted once, and new records are counted."""
    old, new = _chunks(some_records("prod-eight", 60, seed=3), 30)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _migrate_to(conn.execute, "postgresql", 8, "%s")
        _store_one_by_one(conn.execute, old, "%s")
        (logged,) = conn.execute("SELECT count(*) FROM usage_pending").fetchone() or (0,)
        assert logged == sum(1 for r in old if r.allocations is None)  # by the trigger
        add_usage(PostgresRunner(conn), old)  # and those with allocations, as version 8 did
    store = _unhurried(open_store(pg_url))
    try:
        _report_matches(store, "prod-eight")
        store.fold_usage(10)  # some of the log folded, some not
        _report_matches(store, "prod-eight")
        with store.transaction() as tx:
            assert tx.claim_slots(new) == new
        _report_matches(store, "prod-eight")
        store.fold_usage()
        assert log_rows(pg_url) == 0
        _report_matches(store, "prod-eight")
    finally:
        store.close()


def test_postgres_folds_and_reports_find_unfolded_records_by_their_index(pg_url: str) -> None:
    """The fold's statement and a report's part that reads records not folded yet go by the
    index on `logged_by`, even in a generic plan (psycopg prepares a statement after a few
    runs, and PostgreSQL may then plan it without the parameters' values) — never a scan
    of the whole table, nor of the slot index's range of the whole slice."""
    open_store(pg_url).close()  # migrated
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(  # 200,000 records of 2,000 transactions, none of them folded
            "INSERT INTO metering_records (record_id, product_code, customer_aws_account_id, "
            "resource, license_key, dimension, hour, operation, timestamp, quantity_micros, "
            "quantity_text, quantity_as_decimal, customer_identifier, license_arn, "
            "received_at, logged_by) "
            "SELECT 'r' || i, 'p', lpad((i % 5000)::text, 12, '0'), '', '', 'd' || (i / 5000), "
            f"{int(START.timestamp() * 1000)} + (i / 50000) * 3600000, 'BatchMeterUsage', 0, "
            "1000000, '1', 0, '', '', 0, 1000 + i / 100 FROM generate_series(1, 200000) i"
        )
        conn.execute("ANALYZE metering_records")
        conn.execute("SET plan_cache_mode = force_generic_plan")
        queries = [(pg_fold_statement(FOLD_LIMIT), [1000, 1010])]
        for query in (
            UsageSlice("p", START, START + timedelta(days=1), "hours", per_hour=True),
            UsageSlice("p", START, START + timedelta(days=1), "days", by_customer=True),
        ):
            sql, params, _ = sums_query(query, "postgresql", FoldMarks(2990, 0))
            queries.append((sql, params))
        for n, (sql, params) in enumerate(queries):
            numbered = sql.split("?")
            text = "".join(f"{part}${i}" for i, part in enumerate(numbered[:-1], 1))
            conn.execute(f"PREPARE q{n} AS {text + numbered[-1]}")
            values = ", ".join(map(_literal, params))
            plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN EXECUTE q{n}({values})"))
            on_records = [line for line in plan.splitlines() if "on metering_records" in line]
            assert on_records, plan
            assert all("metering_records_logged_by" in line for line in on_records), plan


def _literal(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def test_postgres_a_reset_waits_for_a_fold_running_and_leaves_none_of_its_sums(
    pg_url: str,
) -> None:
    """A fold that read records a reset is about to delete must not add their sums after
    the reset emptied the rollups: the reset waits for it (the folds' lock), then empties
    what it added."""
    product = "prod-reset-fold"
    store = _unhurried(open_store(pg_url))
    try:
        with store.transaction() as tx:
            # (without allocations: no log row of theirs that the fold would hold locked)
            records = [r for r in some_records(product, 40, seed=31) if r.allocations is None]
            assert tx.claim_slots(records) == records
        done = threading.Event()

        def reset() -> None:
            with store.transaction() as tx:
                tx.clear_marketplace()
            done.set()

        with psycopg.connect(pg_url) as conn, conn.transaction():
            assert fold_usage(PostgresRunner(conn), None) > 0  # not committed yet
            resetting = threading.Thread(target=reset)
            resetting.start()
            assert not done.wait(1.0)  # the reset waits for the fold
        resetting.join()
        assert done.is_set()
        assert store.count_records() == 0
        _report_matches(store, product)  # nothing: the fold's sums went with the reset
        assert (
            usage_report(
                store, product, by="month", start=START, end=START + timedelta(days=10), group=[]
            ).rows
            == ()
        )
    finally:
        store.close()
