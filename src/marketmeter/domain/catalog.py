"""Applying the catalog: accounts and their access keys, products, subscriptions, upserted
in one transaction, so that applying the same file twice changes nothing. Also ending
subscriptions (`subscription cancel`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from marketmeter.clock import Clock
from marketmeter.domain.catalog_plan import SubscriptionPlan
from marketmeter.domain.containers import new_signing_key
from marketmeter.domain.errors import CatalogError
from marketmeter.domain.models import Catalog, CatalogEntitlement, Entitlement, Product
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

    def apply(self, catalog: Catalog, *, clear: bool = False) -> ApplySummary:
        """Upsert what the catalog holds. With `clear`, in the same transaction, first
        delete everything else (`Transaction.clear_marketplace`): the marketplace as the
        catalog alone makes it — a test's fresh start."""
        now = self._clock.now()
        try:
            self._apply(catalog, now, clear)
        except StoreConflict as exc:
            raise CatalogError(f"the catalog conflicts with what is stored: {exc}") from exc
        return ApplySummary(
            len(catalog.accounts),
            len(catalog.access_keys),
            len(catalog.products),
            len(catalog.subscriptions),
        )

    def _apply(self, catalog: Catalog, now: datetime, clear: bool) -> None:
        # RSA keys take a while to make: made before the write lock is taken.
        first_keys = {
            p.product_code: new_signing_key(p.product_code, 1, now)
            for p in catalog.products
            if p.type == "container"
            and self._store.latest_signing_key_version(p.product_code) is None
        }
        with self._store.transaction() as tx:
            if clear:
                tx.clear_marketplace()
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
                for entry, license_arn in zip(catalog.subscriptions, planned.licenses, strict=True):
                    if entry.entitlements is not None:
                        product = planned.products[entry.product_code]
                        tx.put_entitlements(
                            license_arn,
                            [_entitlement(product, license_arn, e) for e in entry.entitlements],
                            replace_all=True,
                        )


def _entitlement(product: Product, license_arn: str, entry: CatalogEntitlement) -> Entitlement:
    if not product.has_contract:
        raise CatalogError(
            f"subscription to {product.product_code}: entitlements belong to contract products "
            "(pricing: contract or contract_with_consumption)"
        )
    if entry.dimension not in product.dimensions:
        raise CatalogError(
            f"subscription to {product.product_code}: {entry.dimension!r} is not one of its "
            f"dimensions ({', '.join(product.dimensions)})"
        )
    return Entitlement(license_arn, entry.dimension, entry.type, entry.value, entry.expires_at)
