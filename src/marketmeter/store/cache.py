"""A catalog cache in front of a store.

Every request reads the catalog — the caller's access key, the product, the customer's
subscription — and the catalog changes rarely (a catalog file applied, a subscription
cancelled, a key rotated). `CachedStore` answers those reads from memory and checks the
store's catalog version, at most once per `max_staleness` (1 ms by default), dropping
everything when it changed — also when another process (the CLI, another server) changed
it. Answers that found nothing are cached too. Metering records, client tokens and
registration tokens are never cached, and nothing inside a transaction is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, TypeVar, cast

from marketmeter.domain.models import (
    AccessKey,
    Account,
    ClientTokenEntry,
    MeteringRecord,
    Product,
    RegistrationToken,
    SigningKey,
    Subscription,
)
from marketmeter.store.base import Store, Transaction

T = TypeVar("T")
_MISSING = object()


class CachedStore:
    def __init__(
        self, store: Store, max_staleness: float = 0.001, max_entries: int = 200_000
    ) -> None:
        self.inner = store
        self._max_entries = max_entries
        self.run_inline: bool = getattr(store, "run_inline", False)
        self._max_staleness = max_staleness
        self._entries: dict[tuple[Any, ...], Any] = {}
        self._version: int | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    # -- the cache -------------------------------------------------------------------------

    def _cached(
        self, key: tuple[Any, ...], load: Callable[[], T], *, remember_absence: bool = True
    ) -> T:
        now = time.monotonic()
        if now - self._checked_at > self._max_staleness:
            version = self.inner.catalog_version()
            with self._lock:
                if version != self._version:
                    self._entries = {}
                    self._version = version
                self._checked_at = now
        entries = self._entries
        cached = entries.get(key, _MISSING)
        if cached is not _MISSING:
            return cast(T, cached)
        found = load()
        if found is None and not remember_absence:
            return found
        if len(entries) >= self._max_entries:
            with self._lock:  # bounded; and never a stale row into a newer dict
                if entries is self._entries:
                    self._entries = {}
            return found
        entries[key] = found
        return found

    # -- cached catalog reads --------------------------------------------------------------

    def catalog_version(self) -> int:
        return self.inner.catalog_version()

    def get_access_key(self, access_key_id: str) -> AccessKey | None:
        # Unknown keys are not remembered: they come from requests nobody has authenticated.
        return self._cached(
            ("key", access_key_id),
            lambda: self.inner.get_access_key(access_key_id),
            remember_absence=False,
        )

    def get_account(self, account_id: str) -> Account | None:
        return self._cached(("account", account_id), lambda: self.inner.get_account(account_id))

    def get_product(self, product_code: str) -> Product | None:
        return self._cached(("product", product_code), lambda: self.inner.get_product(product_code))

    def get_subscription_by_license(self, license_arn: str) -> Subscription | None:
        return self._cached(
            ("license", license_arn), lambda: self.inner.get_subscription_by_license(license_arn)
        )

    def get_subscription_by_agreement(self, agreement_id: str) -> Subscription | None:
        return self._cached(
            ("agreement", agreement_id),
            lambda: self.inner.get_subscription_by_agreement(agreement_id),
        )

    def find_subscriptions(
        self,
        product_code: str,
        *,
        customer_aws_account_id: str | None = None,
        customer_identifier: str | None = None,
    ) -> list[Subscription]:
        found = self._cached(
            ("subscriptions", product_code, customer_aws_account_id, customer_identifier),
            lambda: self.inner.find_subscriptions(
                product_code,
                customer_aws_account_id=customer_aws_account_id,
                customer_identifier=customer_identifier,
            ),
        )
        return list(found)

    def customer_identifier_of(self, customer_aws_account_id: str) -> str | None:
        return self.inner.customer_identifier_of(customer_aws_account_id)

    def get_signing_key(self, product_code: str, version: int) -> SigningKey | None:
        return self._cached(
            ("signing_key", product_code, version),
            lambda: self.inner.get_signing_key(product_code, version),
        )

    def latest_signing_key_version(self, product_code: str) -> int | None:
        return self._cached(
            ("latest_key", product_code),
            lambda: self.inner.latest_signing_key_version(product_code),
        )

    # -- never cached ----------------------------------------------------------------------

    def get_registration_token(self, token: str) -> RegistrationToken | None:
        return self.inner.get_registration_token(token)

    def find_client_token(self, account_id: str, client_token: str) -> ClientTokenEntry | None:
        return self.inner.find_client_token(account_id, client_token)

    def transaction(self) -> AbstractContextManager[Transaction]:
        return self.inner.transaction()

    def iter_records(self, product_code: str | None = None) -> Iterator[MeteringRecord]:
        return self.inner.iter_records(product_code)

    def count_records(self, product_code: str | None = None) -> int:
        return self.inner.count_records(product_code)

    async def run(self, unit: Callable[[Transaction], T]) -> T:
        return await self.inner.run(unit)

    def close(self) -> None:
        self.inner.close()
