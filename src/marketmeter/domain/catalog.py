"""Applying the catalog: accounts and their access keys, products, subscriptions, upserted
in one transaction, so that applying the same file twice changes nothing. Also ending
subscriptions (`subscription cancel`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from msgspec.structs import replace

from marketmeter.clock import Clock
from marketmeter.domain.catalog_plan import SubscriptionPlan
from marketmeter.domain.containers import new_signing_key
from marketmeter.domain.errors import CatalogError, NotFound
from marketmeter.domain.models import Catalog, Subscription
from marketmeter.domain.ports import Store, StoreConflict


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
            tx.upsert_accounts(catalog.accounts)
            tx.upsert_access_keys(catalog.access_keys)
            in_file = {a.account_id for a in catalog.accounts}
            for seller in sorted({p.seller_account_id for p in catalog.products} - in_file):
                if tx.get_account(seller) is None:
                    product = next(p for p in catalog.products if p.seller_account_id == seller)
                    raise CatalogError(
                        f"product {product.product_code}: seller account {seller} is not "
                        "in the catalog"
                    )
            tx.upsert_products(catalog.products)
            for key in first_keys.values():
                tx.add_signing_key(key)  # unless one came meanwhile
            if catalog.subscriptions:
                planned = SubscriptionPlan(tx, catalog.subscriptions, now)
                tx.upsert_subscriptions(planned.changed())

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
