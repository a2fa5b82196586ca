"""A target receives its deliveries in the order they were made, even when a later pass of
the delivery worker — of this process or another — comes while the earlier ones are still
being sent (a slow receiver): it leaves the target's later deliveries alone until the
earlier ones are through. A real local HTTP endpoint; the domain on a real SQLite store."""

from __future__ import annotations

import time

from marketmeter.clock import FixedClock
from marketmeter.delivery.worker import Deliverer
from marketmeter.domain.service import MeteringService
from marketmeter.store.sqlite import SqliteStore
from tests.compat.receiver import Receiver
from tests.factories import SAAS

BUYER = "123412341234"


def test_later_claims_for_a_target_wait_for_the_earlier_ones(
    service: MeteringService, store: SqliteStore, clock: FixedClock
) -> None:
    receiver = Receiver()
    receiver.delay = 0.3  # each answer: the first pass is still sending when the next claims
    deliverer = Deliverer(store, clock, "http://127.0.0.1:9")
    try:
        service.marketplace.add_event_target(receiver.url("/events"))
        service.marketplace.subscribe(SAAS, BUYER)
        assert deliverer.deliver_due() == 2
        service.marketplace.cancel(SAAS, BUYER)
        time.sleep(0.1)  # the first delivery is on its way
        assert deliverer.deliver_due() == 0  # the target's earlier ones are being sent
        assert _claimed_once_through(deliverer) >= 1
        _assert_received_in_order(receiver, store)
    finally:
        deliverer.close()
        receiver.close()


def test_another_process_leaves_a_target_alone_while_its_earlier_deliveries_are_sent(
    service: MeteringService, store: SqliteStore, clock: FixedClock
) -> None:
    """Two delivery workers (as two server processes) on one database: while one sends a
    target's deliveries, the other claims none of the target's later ones — it would send
    them first — and takes them once the earlier ones are through."""
    receiver = Receiver()
    receiver.delay = 0.5
    first, second = (Deliverer(store, clock, "http://127.0.0.1:9") for _ in range(2))
    try:
        service.marketplace.add_event_target(receiver.url("/events"))
        service.marketplace.subscribe(SAAS, BUYER)
        assert first.deliver_due() == 2  # sent in the background, slowly
        service.marketplace.cancel(SAAS, BUYER)
        assert second.deliver_due() == 0
        assert _claimed_once_through(second) >= 1
        _assert_received_in_order(receiver, store)
    finally:
        first.close()
        second.close()
        receiver.close()


def _assert_received_in_order(receiver: Receiver, store: SqliteStore) -> None:
    """Every delivery made reaches the receiver, in the order made."""
    made = [d.body["id"] for d in reversed(store.list_deliveries())]  # oldest first
    got = receiver.wait_for("/events", len(made), timeout=20)
    assert [r.json()["id"] for r in got] == made


def _claimed_once_through(deliverer: Deliverer, timeout: float = 20.0) -> int:
    """What a pass claims once the deliveries being sent are through (passes, until one
    claims something)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        claimed = deliverer.deliver_due()
        if claimed:
            return claimed
        time.sleep(0.05)
    return 0
