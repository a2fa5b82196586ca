"""`MeteringService`: the one entry point of the domain, for the protocol layer, the CLI
and the admin API. One method per operation; each call is checked against the
caller's permissions, the enabled Regions and the request quotas first."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from msgspec.structs import replace

from marketmeter.clock import Clock
from marketmeter.domain.authorization import RateLimiter, authorize, check_api_enabled
from marketmeter.domain.catalog import ApplySummary, CatalogService
from marketmeter.domain.containers import Containers
from marketmeter.domain.controls import ActiveControls
from marketmeter.domain.entitlements import Entitlements, EntitlementsPage
from marketmeter.domain.export import export_row
from marketmeter.domain.marketplace import Marketplace
from marketmeter.domain.metering import Metering
from marketmeter.domain.models import (
    AccessKey,
    BatchOutcome,
    Caller,
    Catalog,
    MeterUsageRequest,
    RegisterUsageOutcome,
    RegistrationToken,
    ResolvedCustomer,
    SigningKey,
    Subscription,
    UsageRecord,
)
from marketmeter.domain.ports import Store
from marketmeter.domain.registration import DEFAULT_TOKEN_TTL, Registration
from marketmeter.domain.usage import (
    InvoicePreview,
    Period,
    UsageReport,
    UsageWarning,
    invoice_preview,
    product_usage,
    usage_warnings,
)

# The operations DisabledApiException can refuse (the model lists it for these three).
_SWITCHED_BY_REGION = frozenset({"BatchMeterUsage", "ResolveCustomer", "RegisterUsage"})


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    registration_token_ttl: timedelta = DEFAULT_TOKEN_TTL
    enabled_regions: frozenset[str] | None = None
    """Regions where BatchMeterUsage, ResolveCustomer and RegisterUsage are enabled
    (DisabledApiException elsewhere); None enables every Region."""
    throttling: bool = False
    """Enforce AWS's per-account request quotas (ThrottlingException)."""


class MeteringService:
    def __init__(self, store: Store, clock: Clock, settings: ServiceSettings | None = None) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings or ServiceSettings()
        self._metering = Metering(store, clock)
        self._registration = Registration(store, clock, self.settings.registration_token_ttl)
        self._containers = Containers(store, clock)
        self._catalog = CatalogService(store, clock)
        self._entitlements = Entitlements(store, clock)
        self.marketplace = Marketplace(store, clock, self._registration)
        """The lifecycle, notifications and test controls: what AWS does around the API."""
        self._limiter = RateLimiter() if self.settings.throttling else None
        self.controls: ActiveControls | None = None
        """The test controls this process obeys (`serve --test-controls`), else None."""

    # -- identities --------------------------------------------------------------------

    def access_key(self, access_key_id: str) -> AccessKey | None:
        return self.store.get_access_key(access_key_id)

    # -- the four operations -----------------------------------------------------------

    def batch_meter_usage(
        self, caller: Caller, product_code: str | None, records: list[UsageRecord]
    ) -> BatchOutcome:
        self._admit(caller, "BatchMeterUsage")
        prepared = self._metering.prepare_batch(
            caller, product_code, records, self._unprocessed(len(records))
        )
        return prepared.run(self.store)

    def meter_usage(self, caller: Caller, request: MeterUsageRequest) -> str:
        self._admit(caller, "MeterUsage", dry_run=request.dry_run)
        return self._metering.meter_usage(caller, request)

    # The same two, for a caller on an event loop: the store runs the claims when it will
    # (with others: group commit), and the answer comes once they are committed.

    async def batch_meter_usage_async(
        self, caller: Caller, product_code: str | None, records: list[UsageRecord]
    ) -> BatchOutcome:
        self._admit(caller, "BatchMeterUsage")
        prepared = self._metering.prepare_batch(
            caller, product_code, records, self._unprocessed(len(records))
        )
        return prepared.finish(await self.store.run(prepared.unit))

    async def meter_usage_async(self, caller: Caller, request: MeterUsageRequest) -> str:
        self._admit(caller, "MeterUsage", dry_run=request.dry_run)
        prepared = self._metering.prepare_meter(caller, request)
        return prepared.finish(await self.store.run(prepared.unit))

    def resolve_customer(self, caller: Caller, registration_token: str) -> ResolvedCustomer:
        self._admit(caller, "ResolveCustomer")
        return self._registration.resolve(caller, registration_token)

    def register_usage(
        self, caller: Caller, product_code: str, public_key_version: int, nonce: str | None
    ) -> RegisterUsageOutcome:
        self._admit(caller, "RegisterUsage")
        return self._containers.register_usage(caller, product_code, public_key_version, nonce)

    def get_entitlements(
        self,
        caller: Caller,
        product_code: str,
        filters: Mapping[str, Sequence[str]],
        max_results: int | None,
        next_token: str | None,
    ) -> EntitlementsPage:
        """The Entitlement Service's one operation."""
        self._admit(caller, "GetEntitlements")
        return self._entitlements.get(caller, product_code, filters, max_results, next_token)

    def admit(self, caller: Caller, operation: str, *, dry_run: bool = False) -> Caller:
        """The checks that come before a request is even read — permission, the Region's
        switch, the quota — as AWS's front end makes them. The returned caller carries the
        admission, so that the operation itself does not check (or count) it again."""
        if self.controls is not None:
            self.controls.check(operation, self.store)
        authorize(caller, operation, dry_run=dry_run)
        if operation in _SWITCHED_BY_REGION:
            check_api_enabled(caller, self.settings.enabled_regions)
        if self._limiter is not None:
            self._limiter.acquire(caller, operation, self.clock.now())
        return replace(caller, admitted_for=operation)

    def _unprocessed(self, count: int) -> frozenset[int]:
        if self.controls is None:
            return frozenset()
        return self.controls.unprocessed("BatchMeterUsage", count)

    def _admit(self, caller: Caller, operation: str, *, dry_run: bool = False) -> None:
        if caller.admitted_for != operation:
            self.admit(caller, operation, dry_run=dry_run)

    # -- administration ----------------------------------------------------------------

    def apply_catalog(self, catalog: Catalog, *, clear: bool = False) -> ApplySummary:
        return self._catalog.apply(catalog, clear=clear)

    def issue_registration_token(
        self, product_code: str, customer_aws_account_id: str, expires_in: timedelta | None = None
    ) -> RegistrationToken:
        return self._registration.issue_token(product_code, customer_aws_account_id, expires_in)

    def cancel_subscription(
        self, product_code: str, customer_aws_account_id: str
    ) -> list[Subscription]:
        return self.marketplace.cancel(product_code, customer_aws_account_id)

    def usage_report(
        self,
        product_code: str,
        *,
        by: Period = "day",
        group: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        warnings: bool = False,
    ) -> UsageReport:
        return product_usage(
            self.store,
            self.clock.now(),
            product_code,
            by=by,
            group=group,
            start=start,
            end=end,
            warnings=warnings,
        )

    def usage_warnings(
        self, product_code: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> list[UsageWarning]:
        return usage_warnings(self.store, self.clock.now(), product_code, start=start, end=end)

    def invoice_preview(self, product_code: str, month: datetime) -> InvoicePreview:
        return invoice_preview(self.store, product_code, month)

    def export_records(self, product_code: str | None = None) -> Iterator[dict[str, Any]]:
        for record in self.store.iter_records(product_code):
            yield export_row(record)

    def public_key(self, product_code: str, version: int) -> SigningKey:
        return self._containers.public_key(product_code, version)

    def rotate_key(self, product_code: str) -> SigningKey:
        return self._containers.rotate(product_code)
