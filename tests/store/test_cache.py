"""The catalog cache in front of a real SQLite store, changed from another connection."""

from __future__ import annotations

import time
from pathlib import Path

from marketmeter.clock import FixedClock
from marketmeter.domain.catalog_file import parse_catalog
from marketmeter.domain.service import MeteringService
from marketmeter.store.cache import CachedStore
from marketmeter.store.sqlite import SqliteStore
from tests.conftest import NOW
from tests.factories import BUYER, KEYS, SAAS, make_catalog


def setup(tmp_path: Path) -> tuple[CachedStore, MeteringService]:
    other = MeteringService(SqliteStore(tmp_path / "c.db"), FixedClock(NOW))  # "another process"
    other.apply_catalog(parse_catalog(make_catalog()))
    return CachedStore(SqliteStore(tmp_path / "c.db"), max_staleness=0.01), other


def test_a_cancelled_subscription_is_seen_after_the_staleness_bound(tmp_path: Path) -> None:
    cached, other = setup(tmp_path)
    [before] = cached.find_subscriptions(SAAS, customer_aws_account_id=BUYER)
    assert before.ends_at is None
    other.cancel_subscription(SAAS, BUYER)
    time.sleep(0.02)
    [after] = cached.find_subscriptions(SAAS, customer_aws_account_id=BUYER)
    assert after.ends_at is not None


def test_reads_come_from_memory_while_the_catalog_is_unchanged(tmp_path: Path) -> None:
    cached, other = setup(tmp_path)
    key = cached.get_access_key(KEYS["seller"][0])
    assert key is not None
    # A change that does not go through the catalog (no version bump) is not seen: the
    # answer really came from memory.
    other.store.close()
    import sqlite3

    conn = sqlite3.connect(tmp_path / "c.db")
    conn.execute(
        "UPDATE access_keys SET secret_access_key = 'changed' WHERE access_key_id = ?",
        (key.access_key_id,),
    )
    conn.commit()
    conn.close()
    time.sleep(0.02)
    again = cached.get_access_key(key.access_key_id)
    assert again is not None
    assert again.secret_access_key == key.secret_access_key


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "b.db")
    cached = CachedStore(store, max_entries=100)
    for i in range(1000):
        assert cached.get_product(f"product-{i}") is None
    assert len(cached._entries) <= 100
    store.close()


def test_unknown_access_keys_are_not_remembered(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "u.db")
    cached = CachedStore(store)
    for i in range(100):
        assert cached.get_access_key(f"AKIAUNKNOWN{i:09d}") is None
    assert cached._entries == {}
    store.close()
