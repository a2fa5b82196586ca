"""A catalog cache in front of a store: a server process's reads of the catalog.

Every request reads the catalog — the caller's access key, the product, the customers'
subscriptions — and the catalog changes far more rarely than it is read. `CachedStore`
answers those reads from memory. It never asks the database whether it is still right:
the store's `CatalogWatch` tells it of every committed change, by any process (LISTEN on
PostgreSQL, shared memory on SQLite, a look at the version once a second as a safety net),
and the cache drops exactly what changed — a subscription, a key, a product — or
everything, when the change is unknown or large (a catalog file). The process that made a
change sees it at once; every other process within a second.

Subscriptions are kept per product:
- a product with at most `warm_limit` subscriptions is loaded whole on first use (one
  query), after which a customer it does not hold has none — no query at all;
- otherwise the customers of a request are looked up together, only those not held yet,
  in one query (`subscriptions_of_customers`).
A load that a change overtakes is not kept. Memory is bounded by `max_entries` (rows
held); past it the cache starts again. Answers that found nothing are kept too (except
unknown access keys: anyone can send those). Metering records, ClientTokens and
registration tokens are never cached, and nothing inside a transaction is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from typing import Any, TypeVar, cast

from marketmeter.domain.models import (
    AccessKey,
    Account,
    Product,
    SigningKey,
    Subscription,
)
from marketmeter.domain.ports import (
    CatalogChange,
    CatalogWatch,
    CustomerSubscriptions,
    Store,
)
from marketmeter.store.delegate import DelegatingStore

log = logging.getLogger("marketmeter.cache")
T = TypeVar("T")
_MISSING = object()
_NONE: tuple[Subscription, ...] = ()

WARM_LIMIT = 50_000
"""Products with at most this many subscriptions are loaded whole on first use (about
20 MB per process at the limit)."""
MAX_ENTRIES = 250_000
"""Catalog rows one process keeps, at most."""


class _ProductSubscriptions:
    """One product's subscriptions held, by customer account and by identifier."""

    __slots__ = ("by_account", "by_identifier", "complete", "generation", "loading", "stale")

    def __init__(self) -> None:
        self.by_account: dict[str, tuple[Subscription, ...]] = {}
        self.by_identifier: dict[str, tuple[Subscription, ...]] = {}
        self.complete = False
        """Loaded whole: a customer held in neither map has no subscription — unless
        `stale` names it (changed since)."""
        self.loading = False
        self.stale: set[tuple[str, str]] = set()
        """("a", account) and ("i", identifier) changed since the whole load."""
        self.generation = 0
        """Bumped by every change to the product's subscriptions: a load that started
        before one is not kept."""

    def held(self, kind: str, key: str) -> tuple[Subscription, ...] | None:
        found = (self.by_account if kind == "a" else self.by_identifier).get(key)
        if found is not None:
            return found
        if self.complete and (kind, key) not in self.stale:
            return _NONE
        return None


class CachedStore(DelegatingStore):
    def __init__(
        self,
        store: Store,
        *,
        max_entries: int = MAX_ENTRIES,
        warm_limit: int = WARM_LIMIT,
        remember_unknown_keys: bool = False,
        exact: bool = False,
    ) -> None:
        """`remember_unknown_keys`: keep the absence of an access key too (an in-process
        mock, where unknown keys are everyday callers); a server does not, as anyone may
        send any key id."""
        super().__init__(store)
        self._remember_unknown_keys = remember_unknown_keys
        self._exact = exact
        """Every read first learns the latest committed version (`CatalogWatch.confirm`): a
        test server's, so that a test's change is seen by the very next request."""
        self._max_entries = max_entries
        self._warm_limit = warm_limit
        self._watch: CatalogWatch = store.watch_catalog()
        self._lock = threading.RLock()
        self._entries: dict[tuple[Any, ...], Any] = {}
        self._products: dict[str, _ProductSubscriptions] = {}
        self._warm_tried: set[str] = set()
        self._held = 0  # subscription tuples held in `_products`
        self._generation = 0  # bumped by every change applied: loads before it are not kept
        self._controls_listeners: list[Callable[[], None]] = []

    def on_controls_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` when a change of the test controls is heard (or anything may
        have changed), before the read that heard it goes on."""
        self._controls_listeners.append(listener)

    # -- keeping up with changes -----------------------------------------------------------

    def _sync(self) -> None:
        """Apply the changes committed since the last read. Usually one memory read."""
        if self._exact:
            self._watch.confirm()
        if self._watch.changed():
            with self._lock:
                self._apply(self._watch.take())

    def _apply(self, changes: list[CatalogChange] | None) -> None:
        if changes is None:
            self._drop_all()
            self._controls_changed()
            return
        if not changes:
            return
        self._generation += 1
        for change in changes:
            if change.kind == "controls":
                self._controls_changed()
            elif change.kind == "account":
                self._entries.pop(("account", change.id), None)
            elif change.kind == "access_key":
                self._entries.pop(("key", change.id), None)
            elif change.kind == "product":
                self._forget_product(change.id)
            elif change.kind == "subscription":
                self._forget_subscription(change)

    def _controls_changed(self) -> None:
        for listener in self._controls_listeners:
            try:
                listener()
            except Exception as exc:  # the follower's safety net catches up
                log.warning("following changed test controls failed: %s", exc)

    def _drop_all(self) -> None:
        self._generation += 1
        self._entries = {}
        self._products = {}
        self._warm_tried = set()
        self._held = 0

    def _forget_product(self, product_code: str) -> None:
        for kind in ("product", "latest_key", "signing_keys"):
            self._entries.pop((kind, product_code), None)

    def _forget_subscription(self, change: CatalogChange) -> None:
        """Drop every place the subscription may be held, as it is now and as it was."""
        versions = [change]
        old = self._entries.pop(("license", change.license_arn), None)
        if isinstance(old, Subscription):
            versions.append(CatalogChange.of_subscription(old))
        products = self._products.get(change.product_code)
        if products is not None:
            for held in products.by_account.get(change.customer_aws_account_id, _NONE):
                if held.license_arn == change.license_arn:
                    versions.append(CatalogChange.of_subscription(held))
            products.generation += 1
        for version in versions:
            self._entries.pop(("agreement", version.agreement_id), None)
            if products is None or version.product_code != change.product_code:
                continue
            for kind, key in (
                ("a", version.customer_aws_account_id),
                ("i", version.customer_identifier),
            ):
                held_map = products.by_account if kind == "a" else products.by_identifier
                dropped = held_map.pop(key, None)
                if dropped is not None:
                    self._held -= 1
                if products.complete or products.loading:
                    products.stale.add((kind, key))

    # -- generic entries ---------------------------------------------------------------------

    def _cached(
        self, key: tuple[Any, ...], load: Callable[[], T], *, remember_absence: bool = True
    ) -> T:
        self._sync()
        cached = self._entries.get(key, _MISSING)
        if cached is not _MISSING:
            return cast(T, cached)
        generation = self._generation
        found = load()
        if found is None and not remember_absence:
            return found
        with self._lock:
            if self._generation == generation:
                if len(self._entries) >= self._max_entries:
                    self._drop_all()
                self._entries[key] = found
        return found

    # -- subscriptions ---------------------------------------------------------------------

    def subscriptions_of_customers(
        self,
        product_code: str,
        *,
        accounts: Collection[str] = (),
        identifiers: Collection[str] = (),
    ) -> CustomerSubscriptions:
        self._sync()
        products = self._products.get(product_code)
        if products is None and product_code not in self._warm_tried:
            products = self._warm(product_code)
        by_account: dict[str, tuple[Subscription, ...]] = {}
        by_identifier: dict[str, tuple[Subscription, ...]] = {}
        missing_accounts: list[str] = []
        missing_identifiers: list[str] = []
        for kind, keys, found, missing in (
            ("a", accounts, by_account, missing_accounts),
            ("i", identifiers, by_identifier, missing_identifiers),
        ):
            for key in keys:
                held = None if products is None else products.held(kind, key)
                if held is None:
                    missing.append(key)
                else:
                    found[key] = held
        if missing_accounts or missing_identifiers:
            loaded = self._load_customers(product_code, missing_accounts, missing_identifiers)
            by_account.update(loaded.by_account)
            by_identifier.update(loaded.by_identifier)
        return CustomerSubscriptions(by_account, by_identifier)

    def _load_customers(
        self, product_code: str, accounts: list[str], identifiers: list[str]
    ) -> CustomerSubscriptions:
        with self._lock:
            products = self._products.get(product_code)
            if products is None:
                products = self._products[product_code] = _ProductSubscriptions()
            generation = products.generation
        loaded = self.inner.subscriptions_of_customers(
            product_code, accounts=accounts, identifiers=identifiers
        )
        with self._lock:
            if self._products.get(product_code) is products and products.generation == generation:
                for kind, found, held_map in (
                    ("a", loaded.by_account, products.by_account),
                    ("i", loaded.by_identifier, products.by_identifier),
                ):
                    for key, subscriptions in found.items():
                        if key not in held_map:
                            self._held += 1
                        held_map[key] = subscriptions
                        products.stale.discard((kind, key))
                if self._held > self._max_entries:
                    self._drop_all()
        return loaded

    def _warm(self, product_code: str) -> _ProductSubscriptions | None:
        """Load the whole product, once, if it is small enough."""
        with self._lock:
            if product_code in self._warm_tried:
                return self._products.get(product_code)
            self._warm_tried.add(product_code)
            epoch = self._products
        count = self.inner.count_subscriptions(product_code)
        if count > self._warm_limit or self._held + 2 * count > self._max_entries:
            return self._products.get(product_code)
        with self._lock:
            if self._products is not epoch:
                return None
            products = self._products.get(product_code)
            if products is None:
                products = self._products[product_code] = _ProductSubscriptions()
            products.loading = True
        every = self.inner.product_subscriptions(product_code)
        by_account: dict[str, list[Subscription]] = {}
        by_identifier: dict[str, list[Subscription]] = {}
        for s in every:
            by_account.setdefault(s.customer_aws_account_id, []).append(s)
            by_identifier.setdefault(s.customer_identifier, []).append(s)
        with self._lock:
            if self._products is not epoch or self._products.get(product_code) is not products:
                return self._products.get(product_code)
            for kind, grouped, held_map in (
                ("a", by_account, products.by_account),
                ("i", by_identifier, products.by_identifier),
            ):
                for key, subscriptions in grouped.items():
                    if (kind, key) not in products.stale and key not in held_map:
                        held_map[key] = tuple(subscriptions)
                        self._held += 1
            products.loading = False
            products.complete = True
        return products

    def find_subscriptions(
        self,
        product_code: str,
        *,
        customer_aws_account_id: str | None = None,
        customer_identifier: str | None = None,
    ) -> list[Subscription]:
        if customer_aws_account_id is not None and customer_identifier is None:
            found = self.subscriptions_of_customers(
                product_code, accounts=(customer_aws_account_id,)
            )
            return list(found.by_account[customer_aws_account_id])
        if customer_identifier is not None and customer_aws_account_id is None:
            found = self.subscriptions_of_customers(
                product_code, identifiers=(customer_identifier,)
            )
            return list(found.by_identifier[customer_identifier])
        return self.inner.find_subscriptions(
            product_code,
            customer_aws_account_id=customer_aws_account_id,
            customer_identifier=customer_identifier,
        )

    # -- cached catalog reads --------------------------------------------------------------

    def get_access_key(self, access_key_id: str) -> AccessKey | None:
        # Unknown keys are not remembered on a server: they come from requests nobody has
        # authenticated. (A key added later is a published change: it drops the absence.)
        return self._cached(
            ("key", access_key_id),
            lambda: self.inner.get_access_key(access_key_id),
            remember_absence=self._remember_unknown_keys,
        )

    def get_account(self, account_id: str) -> Account | None:
        return self._cached(("account", account_id), lambda: self.inner.get_account(account_id))

    def get_product(self, product_code: str) -> Product | None:
        return self._cached(("product", product_code), lambda: self.inner.get_product(product_code))

    def get_products(self, product_codes: Collection[str]) -> dict[str, Product]:
        found = {code: self.get_product(code) for code in product_codes}
        return {code: product for code, product in found.items() if product is not None}

    def get_subscription_by_license(self, license_arn: str) -> Subscription | None:
        return self._cached(
            ("license", license_arn), lambda: self.inner.get_subscription_by_license(license_arn)
        )

    def get_subscription_by_agreement(self, agreement_id: str) -> Subscription | None:
        return self._cached(
            ("agreement", agreement_id),
            lambda: self.inner.get_subscription_by_agreement(agreement_id),
        )

    def get_signing_key(self, product_code: str, version: int) -> SigningKey | None:
        # A product's keys are held together, so that a change to it drops them together.
        versions: dict[int, SigningKey | None] = self._cached(("signing_keys", product_code), dict)
        if version not in versions:
            generation = self._generation
            found = self.inner.get_signing_key(product_code, version)
            with self._lock:  # versions come from callers: absent ones are kept a few only
                if self._generation == generation and (found or len(versions) < 64):
                    versions[version] = found
            return found
        return versions[version]

    def latest_signing_key_version(self, product_code: str) -> int | None:
        return self._cached(
            ("latest_key", product_code),
            lambda: self.inner.latest_signing_key_version(product_code),
        )

    def close(self) -> None:
        self._watch.close()
        self.inner.close()
