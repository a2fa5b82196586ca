"""Applying the catalog: accounts and their access keys, products, subscriptions, upserted
in one transaction, so that applying the same file twice changes nothing. Also ending
subscriptions (`subscription cancel`)."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from msgspec.structs import replace

from marketmeter.clock import Clock
from marketmeter.domain.containers import new_signing_key
from marketmeter.domain.errors import CatalogError, NotFound
from marketmeter.domain.models import Catalog, CatalogSubscription, Subscription
from marketmeter.store.base import Store, StoreConflict, Transaction


@dataclass(frozen=True, slots=True)
class ApplySummary:
    accounts: int
    access_keys: int
    products: int
    subscriptions: int


class CatalogService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def apply(self, catalog: Catalog) -> ApplySummary:
        now = self._clock.now()
        try:
            self._apply(catalog, now)
        except StoreConflict as exc:
            raise CatalogError(f"the catalog conflicts with what is stored: {exc}") from exc
        return ApplySummary(
            len(catalog.accounts),
            len(catalog.access_keys),
            len(catalog.products),
            len(catalog.subscriptions),
        )

    def _apply(self, catalog: Catalog, now: datetime) -> None:
        # RSA keys take a while to make: made before the write lock is taken.
        first_keys = {
            p.product_code: new_signing_key(p.product_code, 1, now)
            for p in catalog.products
            if p.type == "container"
            and self._store.latest_signing_key_version(p.product_code) is None
        }
        with self._store.transaction() as tx:
            for account in catalog.accounts:
                tx.upsert_account(account)
            for key in catalog.access_keys:
                tx.upsert_access_key(key)
            for product in catalog.products:
                if tx.get_account(product.seller_account_id) is None:
                    raise CatalogError(
                        f"product {product.product_code}: seller account "
                        f"{product.seller_account_id} is not in the catalog"
                    )
                tx.upsert_product(product)
                if product.product_code in first_keys:
                    tx.add_signing_key(
                        first_keys[product.product_code]
                    )  # unless one came meanwhile
            for entry in catalog.subscriptions:
                self._apply_subscription(tx, entry, now)

    def _apply_subscription(
        self, tx: Transaction, entry: CatalogSubscription, now: datetime
    ) -> None:
        if tx.get_product(entry.product_code) is None:
            raise CatalogError(f"subscription to unknown product {entry.product_code}")
        existing = _existing_subscription(tx, entry)
        if existing is None:
            identifier = (
                entry.customer_identifier
                or tx.customer_identifier_of(entry.customer_aws_account_id)
                or _new_customer_identifier()
            )
            subscription = Subscription(
                product_code=entry.product_code,
                customer_aws_account_id=entry.customer_aws_account_id,
                customer_identifier=identifier,
                license_arn=entry.license_arn or _new_license_arn(entry.customer_aws_account_id),
                agreement_id=entry.agreement_id or _new_agreement_id(),
                created_at=now,
            )
        else:
            if (
                existing.product_code != entry.product_code
                or existing.customer_aws_account_id != entry.customer_aws_account_id
            ):
                raise CatalogError(
                    f"subscription {existing.license_arn} belongs to "
                    f"{existing.customer_aws_account_id} on {existing.product_code}"
                )
            subscription = replace(
                existing,
                customer_identifier=entry.customer_identifier or existing.customer_identifier,
                agreement_id=entry.agreement_id or existing.agreement_id,
            )
        for other in tx.find_subscriptions(
            subscription.product_code, customer_identifier=subscription.customer_identifier
        ):
            if other.customer_aws_account_id != subscription.customer_aws_account_id:
                raise CatalogError(
                    f"customer identifier {subscription.customer_identifier!r} is account "
                    f"{other.customer_aws_account_id}'s on {subscription.product_code}: it "
                    f"cannot also be account {subscription.customer_aws_account_id}'s"
                )
        if entry.status == "cancelled":
            ended = subscription.ends_at is not None and subscription.ends_at <= now
            subscription = replace(subscription, ends_at=subscription.ends_at if ended else now)
        else:
            subscription = replace(subscription, ends_at=None)
        tx.upsert_subscription(subscription)

    def cancel_subscription(
        self, product_code: str, customer_aws_account_id: str
    ) -> list[Subscription]:
        """End every active subscription of the buyer to the product, at once."""
        now = self._clock.now()
        with self._store.transaction() as tx:
            if tx.get_product(product_code) is None:
                raise NotFound(f"no product {product_code}")
            found = tx.find_subscriptions(
                product_code, customer_aws_account_id=customer_aws_account_id
            )
            if not found:
                raise NotFound(
                    f"account {customer_aws_account_id} has no subscription to {product_code}"
                )
            ended = []
            for existing in found:
                current = existing
                if existing.is_active(now):
                    current = replace(existing, ends_at=now)
                    tx.upsert_subscription(current)
                ended.append(current)
        return ended


def _existing_subscription(tx: Transaction, entry: CatalogSubscription) -> Subscription | None:
    if entry.license_arn is not None:
        return tx.get_subscription_by_license(entry.license_arn)
    if entry.agreement_id is not None:
        return tx.get_subscription_by_agreement(entry.agreement_id)
    found = tx.find_subscriptions(
        entry.product_code, customer_aws_account_id=entry.customer_aws_account_id
    )
    return found[0] if found else None


_ALNUM = string.ascii_letters + string.digits


def _new_customer_identifier() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(11))


def _new_license_arn(account_id: str) -> str:
    return f"arn:aws:license-manager::{account_id}:license:l-{secrets.token_hex(16)}"


def _new_agreement_id() -> str:
    return "agmt-" + "".join(
        secrets.choice(string.ascii_lowercase + string.digits) for _ in range(26)
    )
