"""The store interface's promises, run against every implementation: SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from marketmeter.domain.models import (
    Account,
    ClientTokenEntry,
    MeteringRecord,
    Product,
    SlotKey,
    Subscription,
)
from marketmeter.domain.ports import Store, StoreUnavailable, UsageSlice
from marketmeter.domain.quantities import Quantity
from marketmeter.store.factory import open_store as open_database
from marketmeter.store.sqlite import SqliteStore
from tests.factories import alloc

HOUR = datetime(2026, 3, 15, 12, tzinfo=UTC)

Opener = Callable[[], Store]


@pytest.fixture
def open_store(database_url: str) -> Iterator[Opener]:
    """Opens the same (fresh) database as often as asked: one store per process, as it were."""
    opened: list[Store] = []

    def opener() -> Store:
        store = open_database(database_url)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


def make_record(
    quantity: int = 1, *, dimension: str = "users", resource: str = ""
) -> MeteringRecord:
    return MeteringRecord(
        record_id=str(uuid.uuid4()),
        operation="BatchMeterUsage",
        slot=SlotKey("prod", "444455556666", resource, "", dimension, HOUR),
        timestamp=HOUR.replace(minute=7, second=3, microsecond=120000),
        quantity=Quantity.from_integer(quantity),
        allocations=(alloc(quantity, team="a"),),
        customer_identifier="cust",
        license_arn="arn:aws:license-manager::444455556666:license:l-1",
        received_at=HOUR.replace(minute=8),
    )


def test_a_free_slot_stores_the_record_exactly(open_store: Opener) -> None:
    store = open_store()
    record = make_record(5)
    with store.transaction() as tx:
        assert tx.claim_slot(record) == record
    assert list(store.iter_records()) == [record]


def test_a_taken_slot_returns_the_occupant_and_stores_nothing(open_store: Opener) -> None:
    store = open_store()
    first, second = make_record(5), make_record(6)
    with store.transaction() as tx:
        tx.claim_slot(first)
    with store.transaction() as tx:
        assert tx.claim_slot(second) == first
    assert store.count_records() == 1


def test_other_dimensions_and_resources_are_other_slots(open_store: Opener) -> None:
    store = open_store()
    with store.transaction() as tx:
        tx.claim_slot(make_record())
        tx.claim_slot(make_record(dimension="gb"))
        tx.claim_slot(make_record(resource="AKIA1"))
    assert store.count_records() == 3


def test_a_transaction_that_raises_leaves_nothing(open_store: Opener) -> None:
    store = open_store()
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.claim_slot(make_record())
        tx.upsert_account(Account("123456789012"))
        raise RuntimeError("boom")
    assert store.count_records() == 0
    assert store.get_account("123456789012") is None


def _subscriptions(n: int, *, identifier: str = "cust", ended: bool = False) -> list[Subscription]:
    return [
        Subscription(
            product_code="prod",
            customer_aws_account_id=f"6{i:011d}",
            customer_identifier=f"{identifier}{i:06d}",
            license_arn=f"arn:aws:license-manager::6{i:011d}:license:l-{i:032x}",
            agreement_id=f"agmt-{i:026d}",
            created_at=HOUR,
            ends_at=HOUR + timedelta(days=1) if ended and i % 2 else None,
            free_trial=i % 3 == 0,
            offer_id=f"offer-{i}" if i % 5 == 0 else None,
        )
        for i in range(n)
    ]


def test_many_rows_are_upserted_exactly_and_roll_back_together(open_store: Opener) -> None:
    """More rows than one SQLite statement takes, and enough for PostgreSQL's COPY: every
    field stored, changed rows updated, twice in one transaction, and nothing of a
    transaction that raises."""
    store = open_store()
    with store.transaction() as tx:
        tx.upsert_account(Account("111122223333"))
        tx.upsert_product(Product("prod", "111122223333", "saas", ("users",)))
        tx.upsert_subscriptions(_subscriptions(5_500))
    stored = store.product_subscriptions("prod")
    assert sorted(stored, key=lambda s: s.license_arn) == _subscriptions(5_500)
    with store.transaction() as tx:  # two upserts of one table in one transaction
        tx.upsert_subscriptions(_subscriptions(3_000, identifier="first"))
        tx.upsert_subscriptions(_subscriptions(6_000, identifier="again", ended=True))
    stored = store.product_subscriptions("prod")
    assert sorted(stored, key=lambda s: s.license_arn) == _subscriptions(
        6_000, identifier="again", ended=True
    )
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.upsert_subscriptions(_subscriptions(7_000, identifier="lost"))
        raise RuntimeError("boom")
    assert store.count_subscriptions("prod") == 6_000
    assert {s.customer_identifier[:5] for s in store.product_subscriptions("prod")} == {"again"}


def test_client_tokens_are_claimed_once(open_store: Opener) -> None:
    store = open_store()
    now = HOUR
    first = ClientTokenEntry("444455556666", "tok", "fp-1", "rec-1", now)
    with store.transaction() as tx:
        assert tx.claim_client_token(first) == first
    with store.transaction() as tx:
        assert (
            tx.claim_client_token(ClientTokenEntry("444455556666", "tok", "fp-2", "rec-2", now))
            == first
        )
        assert (
            tx.claim_client_token(
                ClientTokenEntry("999999999999", "tok", "fp-3", "r3", now)
            ).record_id
            == "r3"
        )


def test_a_slot_and_a_token_are_claimed_together_only_when_the_record_is_stored(
    open_store: Opener,
) -> None:
    store = open_store()
    first = make_record(3)
    entry = ClientTokenEntry("444455556666", "tok", "fp-1", first.record_id, HOUR)
    with store.transaction() as tx:
        assert tx.claim_slot_and_token(first, entry) == (first, True)
    with store.transaction() as tx:
        assert tx.find_client_token("444455556666", "tok") == entry
        assert tx.get_record(first.record_id) == first
    # The slot taken: the occupant, and the token left unclaimed.
    again = make_record(3)
    other = ClientTokenEntry("444455556666", "tok-2", "fp-2", again.record_id, HOUR)
    with store.transaction() as tx:
        assert tx.claim_slot_and_token(again, other) == (first, False)
        assert tx.find_client_token("444455556666", "tok-2") is None
    # The record stored, the token taken by an earlier request: the record only.
    elsewhere = make_record(3, dimension="hosts")
    reused = ClientTokenEntry("444455556666", "tok", "fp-3", elsewhere.record_id, HOUR)
    with store.transaction() as tx:
        assert tx.claim_slot_and_token(elsewhere, reused) == (elsewhere, False)
        assert tx.find_client_token("444455556666", "tok") == entry
    assert store.count_records() == 2
    # Each stored record reaches the usage rollups once; the one not stored, never.
    sums = store.usage_sums(UsageSlice("prod", HOUR, HOUR + timedelta(hours=1), "hours"))
    assert sorted((s.dimension, s.count) for s in sums) == [("hosts", 1), ("users", 1)]


def test_racing_claims_from_two_store_instances_store_one_record(open_store: Opener) -> None:
    stores = [open_store(), open_store()]  # two connections sets, as two processes would have
    candidates = [make_record(i % 3) for i in range(24)]
    winners: list[MeteringRecord] = []
    barrier = threading.Barrier(len(candidates))
    lock = threading.Lock()

    def claim(i: int) -> None:
        barrier.wait()
        with stores[i % 2].transaction() as tx:
            occupant = tx.claim_slot(candidates[i])
        with lock:
            winners.append(occupant)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(candidates))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({w.record_id for w in winners}) == 1
    assert stores[0].count_records() == 1
    assert winners[0] in candidates


def test_reopening_keeps_the_data(open_store: Opener) -> None:
    first = open_store()
    with first.transaction() as tx:
        tx.claim_slot(make_record())
    first.close()
    again = open_store()
    assert again.count_records() == 1
    assert list(again.iter_records()) == list(again.iter_records("prod"))


def test_stores_opened_at_once_migrate_once(database_url: str) -> None:
    opened: list[Store] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(open_database(database_url))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with opened[0].transaction() as tx:
        tx.claim_slot(make_record())
    assert all(s.count_records() == 1 for s in opened)
    rows = opened[0]._all("SELECT version, name FROM schema_migrations", ())  # type: ignore[attr-defined]
    assert [tuple(r) for r in rows] == [
        (1, "initial"),
        (2, "catalog_version"),
        (3, "no_export_index"),
        (4, "catalog_changes"),
        (5, "lifecycle"),
        (6, "usage_rollups"),
        (7, "usage_log"),
        (8, "records_as_usage_log"),
        *(
            [(9, "rollups_file")]
            if database_url.startswith("sqlite")
            else [(10, "records_as_usage_log")]
        ),
    ]
    for s in opened:
        s.close()


def test_an_unreachable_postgresql_is_unavailable(postgres: object) -> None:
    with pytest.raises(StoreUnavailable, match="PostgreSQL"):
        open_database("postgresql://nobody@127.0.0.1:1/none?pool_timeout=1")


def test_a_locked_sqlite_database_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "locked.db", busy_timeout_ms=50)
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"), store.transaction() as tx:
            tx.claim_slot(make_record())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.count_records() == 0
    store.close()


def test_a_failed_commit_leaves_the_sqlite_store_usable(tmp_path: Path) -> None:
    from marketmeter.domain.models import AccessKey
    from marketmeter.domain.ports import StoreConflict

    store = SqliteStore(tmp_path / "commit.db")
    with pytest.raises(StoreConflict, match="FOREIGN KEY"), store.transaction() as tx:
        # A deferred foreign key fails at COMMIT, the way a full disk would.
        tx._runner().execute("PRAGMA defer_foreign_keys = ON", ())  # type: ignore[attr-defined]
        tx.upsert_access_key(AccessKey("AKIANOACCOUNT0000001", "s", "000000000000"))
    with store.transaction() as tx:
        tx.claim_slot(make_record())
    assert store.count_records() == 1
    assert store.get_access_key("AKIANOACCOUNT0000001") is None
    store.close()


def test_records_are_counted_by_the_minute_they_were_received(open_store: Opener) -> None:
    store = open_store()
    minute = HOUR.replace
    received = [minute(minute=8, second=1), minute(minute=8, second=59), minute(minute=9)]
    received.append(minute(minute=20, second=30))
    with store.transaction() as tx:  # one at a time: stored (and numbered) in this order
        for i, at in enumerate(received):
            tx.claim_slot(msgspec.structs.replace(make_record(dimension=f"d{i}"), received_at=at))
    hour = (HOUR, HOUR + timedelta(hours=1))
    assert store.received_per_minute(*hour, 100) == (
        {minute(minute=8): 2, minute(minute=9): 1, minute(minute=20): 1},
        True,
    )
    later = store.received_per_minute(minute(minute=9), hour[1], 100)
    assert later == ({minute(minute=9): 1, minute(minute=20): 1}, True)
    # Reading only the newest two: those are counted, and the answer says it is not all.
    assert store.received_per_minute(*hour, 2) == (
        {minute(minute=9): 1, minute(minute=20): 1},
        False,
    )
    assert store.received_per_minute(*hour, 4) == (
        {minute(minute=8): 2, minute(minute=9): 1, minute(minute=20): 1},
        True,
    )
    assert store.received_per_minute(hour[1], hour[1] + timedelta(hours=1), 100) == ({}, True)
