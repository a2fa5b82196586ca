"""The catalog cache in front of a real store (SQLite and PostgreSQL): what it keeps, and
how changes reach it — from this process at once, from another within a second, and
through the safety nets when an announcement is missed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from marketmeter.clock import FixedClock
from marketmeter.domain.catalog_file import parse_catalog
from marketmeter.domain.ports import Store
from marketmeter.domain.service import MeteringService
from marketmeter.store.cache import CachedStore
from marketmeter.store.factory import open_store
from tests.conftest import NOW
from tests.factories import BUYER, BUYER2, CONTAINER, KEYS, SAAS, make_catalog
from tests.postgres import TemporaryPostgres

VISIBLE_WITHIN = 1.0  # seconds: a change by another process reaches every cache by then


@pytest.fixture
def stores(database_url: str) -> Iterator[Callable[[], Store]]:
    """Opens the database as often as asked: one store per process, as it were."""
    yield from opened_stores(database_url)


@pytest.fixture
def postgres_url(postgres: TemporaryPostgres) -> str:
    return postgres.create_database()


@pytest.fixture
def postgres_stores(postgres_url: str) -> Iterator[Callable[[], Store]]:
    yield from opened_stores(postgres_url)


def opened_stores(database_url: str) -> Iterator[Callable[[], Store]]:
    opened: list[Store] = []

    def opener() -> Store:
        store = open_store(database_url)
        opened.append(store)
        return store

    MeteringService(opener(), FixedClock(NOW)).apply_catalog(parse_catalog(make_catalog()))
    yield opener
    for store in reversed(opened):
        store.close()


def other_process(stores: Callable[[], Store]) -> MeteringService:
    return MeteringService(stores(), FixedClock(NOW))


def ends_at(cached: CachedStore, account: str = BUYER) -> Any:
    [found] = cached.find_subscriptions(SAAS, customer_aws_account_id=account)
    return found.ends_at


def wait_for(condition: Callable[[], bool], limit: float) -> float:
    """Seconds until `condition` held; fails after `limit`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > limit:
            raise AssertionError(f"not seen within {limit} s")
        time.sleep(0.005)
    return time.monotonic() - started


BUYER2_ENDED = (
    "UPDATE subscriptions SET ends_at = 1 WHERE customer_aws_account_id = ? AND product_code = ?",
    (BUYER2, SAAS),
)


def raw_sql(database_url: str, sql: str, params: tuple[Any, ...] = ()) -> None:
    """A change made by hand, behind every process's back (no announcement)."""
    if database_url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        conn.execute(sql, params)
        conn.commit()
        conn.close()
    else:
        with psycopg.connect(database_url, autocommit=True) as pg:
            pg.execute(sql.replace("?", "%s"), params)


def test_a_change_made_by_this_process_is_seen_at_once(stores: Callable[[], Store]) -> None:
    cached = CachedStore(stores())
    service = MeteringService(cached, FixedClock(NOW))
    assert ends_at(cached) is None
    service.cancel_subscription(SAAS, BUYER)
    assert ends_at(cached) == NOW


def test_a_change_by_another_process_is_seen_within_a_second(
    stores: Callable[[], Store],
) -> None:
    cached = CachedStore(stores())
    assert ends_at(cached) is None
    other_process(stores).cancel_subscription(SAAS, BUYER)
    took = wait_for(lambda: ends_at(cached) is not None, VISIBLE_WITHIN)
    assert took < VISIBLE_WITHIN


def test_a_change_drops_only_what_changed(stores: Callable[[], Store], database_url: str) -> None:
    cached = CachedStore(stores())
    key_id = KEYS["seller"][0]
    seller_key = cached.get_access_key(key_id)
    assert ends_at(cached, BUYER2) is None
    # Changed by hand (unannounced): a cache that re-read them would see the change.
    raw_sql(
        database_url,
        "UPDATE access_keys SET secret_access_key = 'x' WHERE access_key_id = ?",
        (key_id,),
    )
    raw_sql(database_url, *BUYER2_ENDED)
    other_process(stores).cancel_subscription(SAAS, BUYER)  # announced: BUYER's row only
    wait_for(lambda: ends_at(cached) is not None, VISIBLE_WITHIN)
    assert cached.get_access_key(key_id) == seller_key
    assert ends_at(cached, BUYER2) is None


def test_a_version_nobody_announced_is_caught_by_the_safety_net(
    stores: Callable[[], Store], database_url: str
) -> None:
    """A writer killed between its commit and its announcement: the version moved, the
    log says what changed, and no process was told."""
    cached = CachedStore(stores())
    assert ends_at(cached) is None
    raw_sql(database_url, BUYER2_ENDED[0], (BUYER, SAAS))
    raw_sql(database_url, "UPDATE catalog_version SET version = version + 1")
    raw_sql(
        database_url,
        "INSERT INTO catalog_changes (version, changes) "
        "SELECT version, '[[\"all\"]]' FROM catalog_version",
    )
    wait_for(lambda: ends_at(cached) is not None, 3 * VISIBLE_WITHIN)


def test_a_pruned_log_drops_everything(stores: Callable[[], Store], database_url: str) -> None:
    cached = CachedStore(stores())
    assert ends_at(cached, BUYER2) is None
    raw_sql(database_url, *BUYER2_ENDED)
    other_process(stores).cancel_subscription(SAAS, BUYER)
    raw_sql(database_url, "DELETE FROM catalog_changes")  # before this process read it
    wait_for(lambda: ends_at(cached, BUYER2) is not None, VISIBLE_WITHIN)


def test_a_lost_listener_connection_drops_everything(
    postgres_stores: Callable[[], Store], postgres_url: str
) -> None:
    """PostgreSQL: a process hears of changes on a connection of its own."""
    database_url = postgres_url
    cached = CachedStore(postgres_stores())
    assert ends_at(cached, BUYER2) is None
    raw_sql(database_url, *BUYER2_ENDED)  # unannounced: only a cache that starts over sees it
    raw_sql(
        database_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?",
        ("marketmeter-catalog-listener",),
    )
    wait_for(lambda: ends_at(cached, BUYER2) is not None, 3 * VISIBLE_WITHIN)


def test_reads_come_from_memory_while_nothing_is_announced(
    stores: Callable[[], Store], database_url: str
) -> None:
    cached = CachedStore(stores())
    key = cached.get_access_key(KEYS["seller"][0])
    assert key is not None
    raw_sql(
        database_url,
        "UPDATE access_keys SET secret_access_key = 'changed' WHERE access_key_id = ?",
        (key.access_key_id,),
    )
    time.sleep(1.5 * VISIBLE_WITHIN)  # past a safety-net check: the version did not move
    assert cached.get_access_key(key.access_key_id) == key


def test_a_small_product_is_loaded_whole_and_answers_unknown_customers(
    stores: Callable[[], Store],
) -> None:
    cached = CachedStore(stores())
    found = cached.subscriptions_of_customers(SAAS, accounts=[BUYER, "000011112222"])
    assert [s.customer_aws_account_id for s in found.by_account[BUYER]] == [BUYER]
    assert found.by_account["000011112222"] == ()
    products = cached._products[SAAS]
    assert products.complete
    assert set(products.by_account) == {BUYER, BUYER2}  # the whole product, nobody else


def test_a_product_over_the_warm_limit_is_looked_up_by_customer(
    stores: Callable[[], Store],
) -> None:
    cached = CachedStore(stores(), warm_limit=1)
    found = cached.subscriptions_of_customers(SAAS, accounts=[BUYER, "000011112222"])
    assert found.by_account["000011112222"] == ()
    products = cached._products[SAAS]
    assert not products.complete
    assert set(products.by_account) == {BUYER, "000011112222"}  # what was asked, no more


def test_the_cache_is_bounded(stores: Callable[[], Store]) -> None:
    cached = CachedStore(stores(), max_entries=100)
    for i in range(1000):
        assert cached.get_product(f"product-{i}") is None
    assert len(cached._entries) <= 100


def test_unknown_access_keys_are_not_remembered(stores: Callable[[], Store]) -> None:
    cached = CachedStore(stores())
    for i in range(100):
        assert cached.get_access_key(f"AKIAUNKNOWN{i:09d}") is None
    assert not any(key[0] == "key" for key in cached._entries)


def test_key_versions_asked_for_are_bounded(stores: Callable[[], Store]) -> None:
    cached = CachedStore(stores())
    assert cached.get_signing_key(CONTAINER, 1) is not None
    for version in range(2, 1000):  # versions a caller made up: RegisterUsage takes any
        assert cached.get_signing_key(CONTAINER, version) is None
    assert len(cached._entries[("signing_keys", CONTAINER)]) <= 64
    assert cached.get_signing_key(CONTAINER, 1) is not None


def test_an_exact_cache_sees_another_process_at_its_next_read(
    stores: Callable[[], Store],
) -> None:
    """A test server's cache (`exact`): no announcement needs to arrive first."""
    cached = CachedStore(stores(), exact=True)
    listener = getattr(cached._watch, "_stop", None)
    if listener is not None:  # PostgreSQL: stop hearing notifications (and the safety net)
        listener.set()
        cached._watch._thread.join(timeout=5)  # type: ignore[attr-defined]
    assert ends_at(cached) is None
    other_process(stores).cancel_subscription(SAAS, BUYER)
    assert ends_at(cached) == NOW  # this very read


def test_an_unknown_key_remembered_is_forgotten_when_the_key_is_added(
    stores: Callable[[], Store],
) -> None:
    cached = CachedStore(stores(), remember_unknown_keys=True)
    assert cached.get_access_key("AKIALATERKEY00000001") is None
    assert ("key", "AKIALATERKEY00000001") in cached._entries
    catalog = make_catalog()
    catalog["accounts"][0]["access_keys"].append(
        {"access_key_id": "AKIALATERKEY00000001", "secret_access_key": "later-" + "0" * 34}
    )
    other_process(stores).apply_catalog(parse_catalog(catalog))
    wait_for(lambda: cached.get_access_key("AKIALATERKEY00000001") is not None, VISIBLE_WITHIN)
