"""A store that passes every call to another: the base of stores that change a few
(`cache.CachedStore` answers the catalog's reads from memory)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TypeVar

from marketmeter.domain.controls import TestControls
from marketmeter.domain.models import (
    AccessKey,
    Account,
    ClientTokenEntry,
    Entitlement,
    MeteringRecord,
    Product,
    RegistrationToken,
    SigningKey,
    Subscription,
)
from marketmeter.domain.outbox import Attempt, Delivery
from marketmeter.domain.ports import (
    CatalogWatch,
    CustomerSubscriptions,
    EntitlementQuery,
    RecordFilter,
    Store,
    StoredRecordRow,
    Transaction,
    UsageSlice,
    UsageSum,
)
from marketmeter.domain.targets import EventTarget, Webhook

T = TypeVar("T")


class DelegatingStore:
    def __init__(self, store: Store) -> None:
        self.inner = store
        self.run_inline: bool = getattr(store, "run_inline", False)

    def catalog_version(self) -> int:
        return self.inner.catalog_version()

    def get_access_key(self, access_key_id: str) -> AccessKey | None:
        return self.inner.get_access_key(access_key_id)

    def get_account(self, account_id: str) -> Account | None:
        return self.inner.get_account(account_id)

    def get_product(self, product_code: str) -> Product | None:
        return self.inner.get_product(product_code)

    def get_products(self, product_codes: Collection[str]) -> dict[str, Product]:
        return self.inner.get_products(product_codes)

    def get_subscription_by_license(self, license_arn: str) -> Subscription | None:
        return self.inner.get_subscription_by_license(license_arn)

    def get_subscription_by_agreement(self, agreement_id: str) -> Subscription | None:
        return self.inner.get_subscription_by_agreement(agreement_id)

    def find_subscriptions(
        self,
        product_code: str,
        *,
        customer_aws_account_id: str | None = None,
        customer_identifier: str | None = None,
    ) -> list[Subscription]:
        return self.inner.find_subscriptions(
            product_code,
            customer_aws_account_id=customer_aws_account_id,
            customer_identifier=customer_identifier,
        )

    def subscriptions_of_customers(
        self,
        product_code: str,
        *,
        accounts: Collection[str] = (),
        identifiers: Collection[str] = (),
    ) -> CustomerSubscriptions:
        return self.inner.subscriptions_of_customers(
            product_code, accounts=accounts, identifiers=identifiers
        )

    def get_signing_key(self, product_code: str, version: int) -> SigningKey | None:
        return self.inner.get_signing_key(product_code, version)

    def latest_signing_key_version(self, product_code: str) -> int | None:
        return self.inner.latest_signing_key_version(product_code)

    def count_subscriptions(self, product_code: str) -> int:
        return self.inner.count_subscriptions(product_code)

    def product_subscriptions(self, product_code: str) -> list[Subscription]:
        return self.inner.product_subscriptions(product_code)

    def related_subscriptions(
        self,
        *,
        accounts: Collection[str] = (),
        identifiers: Collection[str] = (),
        license_arns: Collection[str] = (),
        agreement_ids: Collection[str] = (),
    ) -> list[Subscription]:
        return self.inner.related_subscriptions(
            accounts=accounts,
            identifiers=identifiers,
            license_arns=license_arns,
            agreement_ids=agreement_ids,
        )

    def customer_identifier_of(self, customer_aws_account_id: str) -> str | None:
        return self.inner.customer_identifier_of(customer_aws_account_id)

    def get_registration_token(self, token: str) -> RegistrationToken | None:
        return self.inner.get_registration_token(token)

    def find_client_token(self, account_id: str, client_token: str) -> ClientTokenEntry | None:
        return self.inner.find_client_token(account_id, client_token)

    def entitlements_of(self, license_arn: str) -> list[Entitlement]:
        return self.inner.entitlements_of(license_arn)

    def page_entitlements(self, query: EntitlementQuery) -> list[tuple[Subscription, Entitlement]]:
        return self.inner.page_entitlements(query)

    def list_webhooks(self, product_code: str | None = None) -> list[Webhook]:
        return self.inner.list_webhooks(product_code)

    def get_webhook(self, webhook_id: str) -> Webhook | None:
        return self.inner.get_webhook(webhook_id)

    def list_event_targets(self, product_code: str | None = None) -> list[EventTarget]:
        return self.inner.list_event_targets(product_code)

    def list_deliveries(
        self, product_code: str | None = None, *, failed_only: bool = False, limit: int = 1000
    ) -> list[Delivery]:
        return self.inner.list_deliveries(product_code, failed_only=failed_only, limit=limit)

    def attempts_of(self, delivery_ids: Collection[str]) -> dict[str, list[Attempt]]:
        return self.inner.attempts_of(delivery_ids)

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        return self.inner.get_delivery(delivery_id)

    def get_sns_key(self) -> tuple[str, str] | None:
        return self.inner.get_sns_key()

    def test_controls(self) -> TestControls:
        return self.inner.test_controls()

    def usage_sums(self, query: UsageSlice) -> list[UsageSum]:
        return self.inner.usage_sums(query)

    def page_records(
        self, where: RecordFilter, *, after: int = 0, limit: int = 100
    ) -> list[StoredRecordRow]:
        return self.inner.page_records(where, after=after, limit=limit)

    def received_per_minute(
        self, start: datetime, end: datetime, newest: int
    ) -> tuple[dict[datetime, int], bool]:
        return self.inner.received_per_minute(start, end, newest)

    def get_record(self, record_id: str) -> MeteringRecord | None:
        return self.inner.get_record(record_id)

    def list_accounts(self) -> list[Account]:
        return self.inner.list_accounts()

    def access_keys_of(self, account_id: str | None = None) -> list[AccessKey]:
        return self.inner.access_keys_of(account_id)

    def list_products(self) -> list[Product]:
        return self.inner.list_products()

    def admin_token_hash(self) -> str | None:
        return self.inner.admin_token_hash()

    def pending_migrations(self) -> list[str]:
        return self.inner.pending_migrations()

    def count_pending_deliveries(self) -> int:
        return self.inner.count_pending_deliveries()

    def claim_deliveries(self, now: datetime, limit: int, lease: float) -> list[Delivery]:
        return self.inner.claim_deliveries(now, limit, lease)

    def finish_attempt(
        self,
        delivery: Delivery,
        attempt: Attempt,
        *,
        delivered: bool,
        retry_at: datetime | None,
    ) -> None:
        self.inner.finish_attempt(delivery, attempt, delivered=delivered, retry_at=retry_at)

    def transaction(self) -> AbstractContextManager[Transaction]:
        return self.inner.transaction()

    def iter_records(self, product_code: str | None = None) -> Iterator[MeteringRecord]:
        return self.inner.iter_records(product_code)

    def count_records(self, product_code: str | None = None) -> int:
        return self.inner.count_records(product_code)

    def watch_catalog(self) -> CatalogWatch:
        return self.inner.watch_catalog()

    async def run(self, unit: Callable[[Transaction], T]) -> T:
        return await self.inner.run(unit)

    def close(self) -> None:
        self.inner.close()
