"""A target receives its deliveries in the order they were made, even when a later pass of
the delivery worker claims more for it while the earlier ones are still being sent (a slow
receiver): the thread sending to it sends those too, after. A real local HTTP endpoint; the
domain on a real SQLite store."""

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
        assert deliverer.deliver_due() >= 1
        made = [d.body["id"] for d in reversed(store.list_deliveries())]  # oldest first
        got = receiver.wait_for("/events", len(made), timeout=20)
        assert [r.json()["id"] for r in got] == made
    finally:
        deliverer.close()
        receiver.close()
