"""`Marketplace`: what AWS does around the API, for the command line, the admin API and
the console alike — the buyer's lifecycle, entitlements, where notifications go and what
was delivered, and the test controls."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from msgspec.structs import replace

from marketmeter.domain.controls import Faults, TestControls, checked_internal_errors
from marketmeter.domain.errors import CatalogError, Conflict, NotFound
from marketmeter.domain.lifecycle import Lifecycle
from marketmeter.domain.notifications import iso_millis
from marketmeter.domain.outbox import Attempt, Delivery, retryable
from marketmeter.domain.targets import EventTarget, Webhook, new_event_target, new_webhook


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    delivery: Delivery
    attempts: list[Attempt]


class Marketplace(Lifecycle):
    """The lifecycle (`Lifecycle`: subscribe, unsubscribe, cancel, entitlements), and what
    surrounds it: notification targets, deliveries, test controls."""

    # -- notification targets ----------------------------------------------------------

    def add_webhook(
        self, product_code: str, url: str, topic: str = "subscription", signature_version: str = "1"
    ) -> Webhook:
        """Subscribe an endpoint to one of the product's SNS topics: pending until it
        confirms through the SubscribeURL of the SubscriptionConfirmation sent to it."""
        now = self._clock.now()
        webhook = new_webhook(product_code, topic, url, signature_version, now)
        with self._store.transaction() as tx:
            if tx.get_product(product_code) is None:
                raise NotFound(f"no product {product_code}")
            if not tx.add_webhook(webhook):
                raise Conflict(f"{url} is subscribed to {webhook.topic_arn} already")
            tx.insert_deliveries([_confirmation(webhook, now)])
        return webhook

    def confirm_webhook(self, token: str) -> Webhook | None:
        with self._store.transaction() as tx:
            return tx.confirm_webhook(token, self._clock.now())

    def webhooks(self, product_code: str | None = None) -> list[Webhook]:
        return self._store.list_webhooks(product_code)

    def remove_webhook(self, webhook_id: str) -> None:
        with self._store.transaction() as tx:
            if not tx.remove_webhook(webhook_id):
                raise NotFound(f"no webhook {webhook_id}")

    def add_event_target(
        self, url: str, product_code: str | None = None, headers: list[str] | None = None
    ) -> EventTarget:
        target = new_event_target(url, product_code, headers or [], self._clock.now())
        with self._store.transaction() as tx:
            if product_code is not None and tx.get_product(product_code) is None:
                raise NotFound(f"no product {product_code}")
            if not tx.add_event_target(target):
                raise Conflict(
                    f"{url} receives the events of {product_code or 'every product'} already"
                )
        return target

    def event_targets(self) -> list[EventTarget]:
        return self._store.list_event_targets()

    def remove_event_target(self, target_id: str) -> None:
        with self._store.transaction() as tx:
            if not tx.remove_event_target(target_id):
                raise NotFound(f"no event target {target_id}")

    def deliveries(
        self, product_code: str | None = None, *, failed_only: bool = False
    ) -> list[DeliveryReport]:
        found = self._store.list_deliveries(product_code, failed_only=failed_only)
        attempts = self._store.attempts_of([d.id for d in found])
        return [DeliveryReport(d, attempts[d.id]) for d in found]

    def retry_delivery(self, delivery_id: str) -> Delivery:
        """Send a failed delivery (or one waiting out its backoff) again, now: the
        delivery worker picks it up at once. Same id and body: a redelivery."""
        with self._store.transaction() as tx:
            retried = tx.retry_delivery(delivery_id, self._clock.now())
            if retried is not None:
                return retried
            found = tx.get_delivery(delivery_id)
        if found is None:
            raise NotFound(f"no delivery {delivery_id}")
        if retryable(found):
            raise Conflict(f"delivery {delivery_id} is being sent now")
        why = " and not due yet" if found.status == "pending" else ""
        raise Conflict(
            f"delivery {delivery_id} is {found.status}{why}: only a failed delivery, or one "
            "waiting to be tried again, can be retried"
        )

    # -- test controls -----------------------------------------------------------------

    def test_controls(self) -> TestControls:
        return self._store.test_controls()

    def set_clock(self, at: datetime, real_now: datetime) -> TestControls:
        """The service clock reads `at` now, and runs on from there."""
        offset = _checked_offset(at - real_now)
        return self._update_controls(lambda c: replace(c, clock_offset=offset))

    def advance_clock(self, by: timedelta) -> TestControls:
        if abs(by) > MAX_CLOCK_OFFSET:
            raise CatalogError(f"the clock moves at most {MAX_CLOCK_OFFSET.days} days at once")
        return self._update_controls(
            lambda c: replace(c, clock_offset=_checked_offset(c.clock_offset + by))
        )

    def reset_clock(self) -> TestControls:
        return self._update_controls(lambda c: replace(c, clock_offset=timedelta(0)))

    def set_faults(self, faults: Faults, internal_errors: int) -> TestControls:
        checked_internal_errors(internal_errors)
        return self._update_controls(
            lambda c: replace(c, faults=faults, internal_errors=internal_errors)
        )

    def clear_faults(self) -> TestControls:
        return self._update_controls(lambda c: replace(c, faults=None, internal_errors=0))

    def _update_controls(self, change: Callable[[TestControls], TestControls]) -> TestControls:
        with self._store.transaction() as tx:
            updated = change(tx.test_controls())
            tx.update_test_controls(updated)
        return updated


MAX_CLOCK_OFFSET = timedelta(days=36_500)
"""How far the service clock may be from real time: a century either way."""


def _checked_offset(offset: timedelta) -> timedelta:
    if abs(offset) > MAX_CLOCK_OFFSET:
        raise CatalogError(
            f"the service clock stays within {MAX_CLOCK_OFFSET.days} days of real time"
        )
    return offset


def _confirmation(webhook: Webhook, now: datetime) -> Delivery:
    return Delivery(
        id=str(uuid.uuid4()),
        kind="sns",
        target_id=webhook.id,
        product_code=webhook.product_code,
        name="SubscriptionConfirmation",
        body={
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": webhook.token,
            "TopicArn": webhook.topic_arn,
            "Message": (
                f"You have chosen to subscribe to the topic {webhook.topic_arn}.\n"
                "To confirm the subscription, visit the SubscribeURL included in this message."
            ),
            "Timestamp": iso_millis(now),
        },
        created_at=now,
        due_at=now,
        next_attempt_at=now,
    )
