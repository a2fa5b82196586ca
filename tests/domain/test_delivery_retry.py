"""Retrying a delivery by hand (the console's button, `deliveries retry`, the admin API):
which deliveries may be retried, what a retry changes, and that a delivery a worker is
sending is left to it — against a real SQLite store and a fixed clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from marketmeter.clock import FixedClock
from marketmeter.domain.errors import Conflict, NotFound
from marketmeter.domain.outbox import RETRY_FOR, Attempt, Delivery, retryable
from marketmeter.domain.service import MeteringService
from marketmeter.store.sqlite import SqliteStore
from tests.factories import SAAS

BUYER = "123412341234"


@pytest.fixture
def delivery(service: MeteringService, store: SqliteStore) -> Delivery:
    """An event to an endpoint that never answers, not tried yet."""
    service.marketplace.add_event_target("https://seller.example/events")
    service.marketplace.subscribe(SAAS, BUYER)
    return store.list_deliveries()[-1]  # the oldest: Purchase Agreement Created


def fail(store: SqliteStore, d: Delivery, at: int, *, final: bool, clock: FixedClock) -> None:
    [claimed] = [c for c in store.claim_deliveries(clock.now(), 10, 60.0) if c.id == d.id]
    retry_at = None if final else clock.now() + timedelta(minutes=5)
    store.finish_attempt(
        claimed,
        Attempt(d.id, at, clock.now(), 500, None),
        delivered=False,
        retry_at=retry_at,
    )


def test_only_a_failed_delivery_or_one_being_retried_is_retryable(
    service: MeteringService, store: SqliteStore, delivery: Delivery, clock: FixedClock
) -> None:
    assert not retryable(delivery)
    with pytest.raises(Conflict, match="pending and not due yet"):
        service.marketplace.retry_delivery(delivery.id)
    with pytest.raises(NotFound):
        service.marketplace.retry_delivery("no-such-delivery")
    fail(store, delivery, 1, final=False, clock=clock)
    clock.advance(timedelta(seconds=30))
    retried = service.marketplace.retry_delivery(delivery.id)
    assert retried.status == "pending" and retried.next_attempt_at == clock.now()
    assert retried.due_at == delivery.due_at  # a backoff cut short: the same day of attempts
    assert retried.attempts == 1
    assert store.get_delivery(delivery.id) == retried


def test_a_failed_delivery_gets_a_new_day_and_a_sent_one_is_refused(
    service: MeteringService, store: SqliteStore, delivery: Delivery, clock: FixedClock
) -> None:
    clock.advance(RETRY_FOR)
    fail(store, delivery, 1, final=True, clock=clock)
    assert store.get_delivery(delivery.id).status == "failed"  # type: ignore[union-attr]
    clock.advance(timedelta(hours=3))
    retried = service.marketplace.retry_delivery(delivery.id)
    assert (retried.status, retried.due_at, retried.next_attempt_at) == (
        "pending",
        clock.now(),
        clock.now(),
    )
    [claimed] = [c for c in store.claim_deliveries(clock.now(), 10, 60.0) if c.id == delivery.id]
    store.finish_attempt(
        claimed, Attempt(delivery.id, 2, clock.now(), 200, None), delivered=True, retry_at=None
    )
    with pytest.raises(Conflict, match="is delivered"):
        service.marketplace.retry_delivery(delivery.id)


def test_a_delivery_a_worker_is_sending_is_left_to_it(
    service: MeteringService, store: SqliteStore, delivery: Delivery, clock: FixedClock
) -> None:
    fail(store, delivery, 1, final=False, clock=clock)
    clock.advance(timedelta(minutes=5))
    [claimed] = [c for c in store.claim_deliveries(clock.now(), 10, 60.0) if c.id == delivery.id]
    with pytest.raises(Conflict, match="being sent now"):
        service.marketplace.retry_delivery(delivery.id)
    assert store.get_delivery(delivery.id) == claimed  # unchanged
