"""A buyer's life with a product: subscribe, unsubscribe (with its final hour), the
administrative cancel, and a contract's entitlements — each change written together with
the notifications it causes (the outbox), or not at all.

- `subscribe` makes the subscription, or reopens an ended one keeping its identifiers, and
  mints a registration token. On an active subscription it changes nothing and sends
  nothing, but mints a fresh token (the buyer back through "set up your account"). Inside
  an unsubscribe's final hour it calls the unsubscribe off: no `unsubscribe-success`, a
  `subscribe-success` instead.
- `unsubscribe` leaves a final hour of the service clock in which usage is still accepted;
  the notifications of its end are written now, due when the hour closes.
- `cancel` ends at once, with every notification at once.
- Entitlements belong to subscriptions of contract products; a change of them is an
  `entitlement-updated`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from msgspec.structs import replace

from marketmeter.clock import Clock
from marketmeter.domain.catalog_file import ACCOUNT_ID
from marketmeter.domain.catalog_plan import (
    new_agreement_id,
    new_customer_identifier,
    new_license_arn,
)
from marketmeter.domain.errors import CatalogError, NotFound
from marketmeter.domain.models import Entitlement, Product, RegistrationToken, Subscription
from marketmeter.domain.notifications import Change, deliveries_for
from marketmeter.domain.ports import Store, Transaction
from marketmeter.domain.registration import Registration

FINAL_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Subscribed:
    subscription: Subscription
    token: RegistrationToken
    changed: bool
    """False when it was active already: nothing changed and nothing was sent."""


class Lifecycle:
    def __init__(self, store: Store, clock: Clock, registration: Registration) -> None:
        self._store = store
        self._clock = clock
        self._registration = registration

    def subscribe(
        self,
        product_code: str,
        customer_aws_account_id: str,
        *,
        free_trial: bool = False,
        offer_id: str | None = None,
    ) -> Subscribed:
        if not ACCOUNT_ID.fullmatch(customer_aws_account_id):
            raise CatalogError(f"an AWS account ID of 12 digits, not {customer_aws_account_id!r}")
        now = self._clock.now()
        with self._store.transaction() as tx:
            product = _product(tx, product_code)
            existing = _latest(tx, product_code, customer_aws_account_id)
            if existing is not None and existing.state(now) == "active":
                subscription, changed = existing, False
            else:
                if existing is None:
                    subscription = Subscription(
                        product_code=product_code,
                        customer_aws_account_id=customer_aws_account_id,
                        customer_identifier=tx.customer_identifier_of(customer_aws_account_id)
                        or new_customer_identifier(),
                        license_arn=new_license_arn(customer_aws_account_id),
                        agreement_id=new_agreement_id(),
                        created_at=now,
                        free_trial=free_trial,
                        offer_id=offer_id,
                    )
                else:
                    if existing.state(now) == "unsubscribe-pending":
                        tx.cancel_deliveries(_ending_key(existing))
                    subscription = replace(
                        existing,
                        ends_at=None,
                        unsubscribed_at=None,
                        free_trial=free_trial,
                        offer_id=offer_id if offer_id is not None else existing.offer_id,
                    )
                tx.upsert_subscription(subscription)
                _notify(tx, "subscribed", product, subscription, now)
                changed = True
        token = self._registration.issue_token(product_code, customer_aws_account_id)
        return Subscribed(subscription, token, changed)

    def unsubscribe(self, product_code: str, customer_aws_account_id: str) -> Subscription:
        now = self._clock.now()
        with self._store.transaction() as tx:
            product = _product(tx, product_code)
            existing = _latest(tx, product_code, customer_aws_account_id)
            if existing is None:
                raise NotFound(_no_subscription(product_code, customer_aws_account_id))
            if existing.state(now) != "active":
                return existing  # pending or ended already: nothing more to do
            ending = replace(existing, unsubscribed_at=now, ends_at=now + FINAL_HOUR)
            tx.upsert_subscription(ending)
            _notify(tx, "unsubscribe-pending", product, ending, now)
            _notify(
                tx,
                "unsubscribed",
                product,
                ending,
                now,
                due_at=ending.ends_at,
                cancel_key=_ending_key(ending),
            )
        return ending

    def cancel(self, product_code: str, customer_aws_account_id: str) -> list[Subscription]:
        """End every subscription of the buyer to the product at once."""
        now = self._clock.now()
        with self._store.transaction() as tx:
            product = _product(tx, product_code)
            found = tx.find_subscriptions(
                product_code, customer_aws_account_id=customer_aws_account_id
            )
            if not found:
                raise NotFound(_no_subscription(product_code, customer_aws_account_id))
            ended = []
            for existing in found:
                current = existing
                if existing.is_active(now):
                    if existing.state(now) == "unsubscribe-pending":
                        tx.cancel_deliveries(_ending_key(existing))
                    current = replace(existing, ends_at=now)
                    tx.upsert_subscription(current)
                    _notify(tx, "cancelled", product, current, now)
                ended.append(current)
        return ended

    def set_entitlement(
        self,
        product_code: str,
        customer_aws_account_id: str,
        dimension: str,
        value: str,
        *,
        type_: str | None = None,
        expires_at: datetime | None = None,
    ) -> Entitlement:
        now = self._clock.now()
        with self._store.transaction() as tx:
            product = _product(tx, product_code)
            subscription = self._contract_subscription(tx, product, customer_aws_account_id)
            entitlement = checked_entitlement(
                product,
                subscription.license_arn,
                dimension,
                value,
                type_=type_,
                expires_at=expires_at,
            )
            tx.put_entitlements(subscription.license_arn, [entitlement], replace_all=False)
            _notify(tx, "amended", product, subscription, now)
        return entitlement

    def remove_entitlement(
        self, product_code: str, customer_aws_account_id: str, dimension: str
    ) -> None:
        now = self._clock.now()
        with self._store.transaction() as tx:
            product = _product(tx, product_code)
            subscription = self._contract_subscription(tx, product, customer_aws_account_id)
            if not tx.remove_entitlement(subscription.license_arn, dimension):
                raise NotFound(
                    f"account {customer_aws_account_id} has no entitlement to {dimension!r} "
                    f"of {product_code}"
                )
            _notify(tx, "amended", product, subscription, now)

    def _contract_subscription(
        self, tx: Transaction, product: Product, customer_aws_account_id: str
    ) -> Subscription:
        if not product.has_contract:
            raise CatalogError(
                f"product {product.product_code} is priced by usage: entitlements belong to "
                "contract products (pricing: contract or contract_with_consumption)"
            )
        subscription = _latest(tx, product.product_code, customer_aws_account_id)
        if subscription is None:
            raise NotFound(_no_subscription(product.product_code, customer_aws_account_id))
        return subscription


def checked_entitlement(
    product: Product,
    license_arn: str,
    dimension: str,
    value: str,
    *,
    type_: str | None = None,
    expires_at: datetime | None = None,
) -> Entitlement:
    """An entitlement of a dimension of the product, its value of its type (CatalogError
    naming what is wrong)."""
    from marketmeter.domain.entitlements import typed_value

    if dimension not in product.dimensions:
        raise CatalogError(
            f"{dimension!r} is not a dimension of {product.product_code} "
            f"({', '.join(product.dimensions)})"
        )
    kind, text = typed_value(value, type_)
    return Entitlement(license_arn, dimension, kind, text, expires_at)


def _notify(
    tx: Transaction,
    change: Change,
    product: Product,
    subscription: Subscription,
    now: datetime,
    *,
    due_at: datetime | None = None,
    cancel_key: str | None = None,
) -> None:
    webhooks = tx.list_webhooks(product.product_code)
    targets = tx.list_event_targets(product.product_code)
    deliveries = deliveries_for(
        change,
        product=product,
        subscription=subscription,
        webhooks=webhooks,
        targets=targets,
        now=now,
        due_at=due_at,
        cancel_key=cancel_key,
    )
    if deliveries:
        tx.insert_deliveries(deliveries)


def _product(tx: Transaction, product_code: str) -> Product:
    product = tx.get_product(product_code)
    if product is None:
        raise NotFound(f"no product {product_code}")
    return product


def _latest(tx: Transaction, product_code: str, account: str) -> Subscription | None:
    """The buyer's subscription to the product: the newest, preferring a live one."""
    found: Sequence[Subscription] = tx.find_subscriptions(
        product_code, customer_aws_account_id=account
    )
    live = [s for s in found if s.ends_at is None]
    newest = live or list(found)
    return newest[-1] if newest else None


def _ending_key(subscription: Subscription) -> str:
    return f"ending:{subscription.license_arn}"


def _no_subscription(product_code: str, account: str) -> str:
    return f"account {account} has no subscription to {product_code}"
