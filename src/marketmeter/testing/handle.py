"""`MarketplaceHandle`: what a test does to the marketplace around the code it tests —
subscribe buyers, set entitlements, move the clock, make calls fail, read back what was
metered. The same domain functions as the command line (`Marketplace`, `MeteringService`,
`domain.usage`), on the mock's database or on a test server's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from marketmeter.catalog_source import CatalogSource, load_catalog
from marketmeter.domain.catalog import ApplySummary
from marketmeter.domain.controls import TestControls, checked_faults, parse_duration
from marketmeter.domain.errors import NotFound
from marketmeter.domain.marketplace import DeliveryReport
from marketmeter.domain.models import Entitlement, Subscription
from marketmeter.domain.ports import RecordFilter
from marketmeter.domain.service import MeteringService
from marketmeter.domain.targets import EventTarget, Webhook
from marketmeter.domain.usage import (
    DEFAULT_GROUP,
    Period,
    StoredRecord,
    UsageReport,
    find_records,
    period_start,
)
from marketmeter.fulfillment import subscribe_buyer

if TYPE_CHECKING:
    from marketmeter.fulfillment import FulfillmentAnswer


class NotActive(RuntimeError):
    """The handle of a mock that is not active (or a server that stopped)."""


class MarketplaceHandle:
    def __init__(
        self,
        service: MeteringService,
        *,
        obey: Callable[[TestControls], None],
        check_active: Callable[[], bool] = lambda: True,
    ) -> None:
        self._service = service
        self._obey = obey
        self._check_active = check_active
        self.clock = ClockControl(self)
        """The marketplace's clock: `now()`, `set(at)`, `advance(by)`, `reset()`."""
        self.faults = FaultControl(self)
        """AWS's failures on demand: `set(...)`, `clear()`."""
        self.catalog = CatalogControl(self)
        """`apply(file_or_mapping)`: more accounts, products, subscriptions."""
        self.fulfillment_answers: list[FulfillmentAnswer] = []
        """What the fulfillment URL answered to each `subscribe` that posted to it."""

    @property
    def service(self) -> MeteringService:
        if not self._check_active():
            raise NotActive(
                "this marketplace is not active: use its handle inside `with "
                "mock_marketplace()`, the decorated test, or the fixture's test"
            )
        return self._service

    # -- a buyer's life ----------------------------------------------------------------

    def subscribe(
        self,
        product: str,
        customer_account: str,
        *,
        free_trial: bool = False,
        offer: str | None = None,
    ) -> str:
        """The buyer subscribes (or resubscribes); the registration token, as AWS posts it
        to the product's fulfillment URL — and posts it there too when the product has
        one (the answer goes to `fulfillment_answers`)."""
        bought = subscribe_buyer(
            self.service, product, customer_account, free_trial=free_trial, offer_id=offer
        )
        if bought.answer is not None:
            self.fulfillment_answers.append(bought.answer)
        done = bought.done
        return done.token.token

    def unsubscribe(self, product: str, customer_account: str) -> Subscription:
        """The buyer unsubscribes: usage is accepted for one more hour of the clock."""
        return self.service.marketplace.unsubscribe(product, customer_account)

    def cancel(self, product: str, customer_account: str) -> list[Subscription]:
        """AWS ends the subscription at once."""
        return self.service.marketplace.cancel(product, customer_account)

    def subscription(self, product: str, customer_account: str) -> Subscription:
        """The buyer's latest subscription to the product (identifiers, state, times)."""
        found = self.service.store.find_subscriptions(
            product, customer_aws_account_id=customer_account
        )
        if not found:
            raise NotFound(f"account {customer_account} never subscribed to {product}")
        return max(found, key=lambda s: s.created_at)

    def token(
        self, product: str, customer_account: str, *, expires_in: timedelta | None = None
    ) -> str:
        """A fresh registration token of a subscribed buyer."""
        return self.service.issue_registration_token(product, customer_account, expires_in).token

    def entitlement(
        self,
        product: str,
        customer_account: str,
        dimension: str,
        value: str | int | float | bool | Decimal,
        *,
        type: str | None = None,
        expires_at: datetime | None = None,
    ) -> Entitlement:
        """Set a contract's entitlement (what GetEntitlements returns)."""
        text = str(value).lower() if isinstance(value, bool) else str(value)
        return self.service.marketplace.set_entitlement(
            product, customer_account, dimension, text, type_=type, expires_at=expires_at
        )

    def remove_entitlement(self, product: str, customer_account: str, dimension: str) -> None:
        self.service.marketplace.remove_entitlement(product, customer_account, dimension)

    # -- reading back ------------------------------------------------------------------

    def records(
        self,
        product: str | None = None,
        *,
        customer: str | None = None,
        dimension: str | None = None,
        hour: datetime | None = None,
    ) -> list[StoredRecord]:
        """Stored metering records, in the order stored: of a product, a customer (its
        CustomerIdentifier or AWS account ID), a dimension, an hour of use."""
        start = None if hour is None else period_start(_aware(hour), "hour")
        query = RecordFilter(
            product,
            customer,
            dimension=dimension,
            start=start,
            end=None if start is None else start + timedelta(hours=1),
        )
        return list(find_records(self.service.store, query))

    def usage(
        self,
        product: str,
        *,
        by: Period = "hour",
        group: tuple[str, ...] | list[str] = DEFAULT_GROUP,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> UsageReport:
        """Exact totals per period and group (customer, dimension, tag:KEY), from `start`
        (default: the month's start) until `end` (default: now, by the marketplace's
        clock) — the numbers of `usage report`."""
        return self.service.usage_report(
            product,
            by=by,
            group=group,
            start=None if start is None else _aware(start),
            end=None if end is None else _aware(end),
        )

    def add_webhook(
        self,
        product: str,
        url: str,
        *,
        topic: str = "subscription",
        signature_version: str = "1",
    ) -> Webhook:
        """Subscribe an endpoint to a product's SNS topic (`subscription` or
        `entitlement`); it is sent a SubscriptionConfirmation first."""
        return self.service.marketplace.add_webhook(product, url, topic, signature_version)

    def add_event_target(
        self, url: str, *, product: str | None = None, headers: list[str] | None = None
    ) -> EventTarget:
        """Send the EventBridge events (of one product, or all) to `url`."""
        return self.service.marketplace.add_event_target(url, product, headers)

    def deliveries(
        self, product: str | None = None, *, failed: bool = False
    ) -> list[DeliveryReport]:
        """The SNS messages and EventBridge events written so far, with their attempts."""
        return self.service.marketplace.deliveries(product, failed_only=failed)

    def assert_metered(
        self,
        *,
        customer: str,
        dimension: str,
        hour: datetime,
        quantity: int | float | str | Decimal | None = None,
        product: str | None = None,
    ) -> list[StoredRecord]:
        """Assert that the customer was metered `quantity` of `dimension` in the hour of
        `hour` (summed over its records; any quantity when None). On failure the message
        lists what *was* metered for the customer in that hour."""
        hour_start = period_start(_aware(hour), "hour")
        in_hour = self.records(product, customer=customer, hour=hour_start)
        matching = [r for r in in_hour if r.dimension == dimension]
        total = sum((r.quantity for r in matching), Decimal(0))
        expected = None if quantity is None else Decimal(str(quantity))
        if matching and (expected is None or total == expected):
            return matching
        wanted = "some" if expected is None else str(expected)
        lines = [
            f"expected {wanted} {dimension!r} metered for {customer} in the hour of "
            f"{hour_start:%Y-%m-%dT%H:%MZ}, found {total if matching else 'none'}."
        ]
        if in_hour:
            lines.append("Metered for that customer in that hour:")
            lines += [
                f"  {r.product_code} {r.dimension} = {r.quantity} ({r.operation}, "
                f"record {r.record_id})"
                for r in in_hour
            ]
        else:
            lines.append("Nothing was metered for that customer in that hour.")
            other = sorted({r.hour for r in self.records(product, customer=customer)})
            if other:
                lines.append(
                    "It was metered in: " + ", ".join(f"{h:%Y-%m-%dT%H:%MZ}" for h in other)
                )
        raise AssertionError("\n".join(lines))

    # -- controls ----------------------------------------------------------------------

    def _controls_changed(self, controls: TestControls) -> None:
        self._obey(controls)


class ClockControl:
    def __init__(self, handle: MarketplaceHandle) -> None:
        self._handle = handle

    def now(self) -> datetime:
        return self._handle.service.clock.now()

    def set(self, at: datetime) -> datetime:
        """From now on the clock reads `at`, and runs on from there."""
        h = self._handle
        h._controls_changed(h.service.marketplace.set_clock(_aware(at), datetime.now(UTC)))
        return self.now()

    def advance(self, by: timedelta | str) -> datetime:
        """Move the clock on by a timedelta or a duration ("61m", "1d2h")."""
        h = self._handle
        step = parse_duration(by) if isinstance(by, str) else by
        h._controls_changed(h.service.marketplace.advance_clock(step))
        return self.now()

    def reset(self) -> datetime:
        h = self._handle
        h._controls_changed(h.service.marketplace.reset_clock())
        return self.now()


class FaultControl:
    def __init__(self, handle: MarketplaceHandle) -> None:
        self._handle = handle

    def set(
        self,
        *,
        operation: str | None = None,
        throttle: bool = False,
        throttle_rate: float = 0.0,
        internal_errors: int = 0,
        unprocessed_rate: float = 0.0,
        latency_ms: int = 0,
    ) -> None:
        """Fail calls as AWS can (of one operation, or all): throttle every call or a
        share of them, answer the next `internal_errors` calls with a 500, leave a share
        of batch records unprocessed, delay answers."""
        faults = checked_faults(operation, throttle, throttle_rate, unprocessed_rate, latency_ms)
        h = self._handle
        h._controls_changed(h.service.marketplace.set_faults(faults, internal_errors))

    def clear(self) -> None:
        h = self._handle
        h._controls_changed(h.service.marketplace.clear_faults())


class CatalogControl:
    def __init__(self, handle: MarketplaceHandle) -> None:
        self._handle = handle

    def apply(self, source: CatalogSource) -> ApplySummary:
        """Add or update what a catalog file or mapping describes."""
        return self._handle.service.apply_catalog(load_catalog(source))


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"give times with their timezone (e.g. UTC), not {at!r}")
    return at.astimezone(UTC)
