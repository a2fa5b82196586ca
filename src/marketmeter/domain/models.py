"""The domain's records: catalog entities, callers, usage inputs and stored records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import msgspec

from marketmeter.domain.quantities import Quantity

ProductType = Literal["saas", "ami", "container"]
PRODUCT_TYPES: tuple[ProductType, ...] = ("saas", "ami", "container")
Pricing = Literal["usage", "contract", "contract_with_consumption"]
PRICINGS: tuple[Pricing, ...] = ("usage", "contract", "contract_with_consumption")
Operation = Literal[
    "MeterUsage", "BatchMeterUsage", "ResolveCustomer", "RegisterUsage", "GetEntitlements"
]
OPERATIONS: tuple[Operation, ...] = (
    "MeterUsage",
    "BatchMeterUsage",
    "ResolveCustomer",
    "RegisterUsage",
    "GetEntitlements",
)


class Account(msgspec.Struct, frozen=True, gc=False):
    account_id: str
    name: str | None = None


class AccessKey(msgspec.Struct, frozen=True, gc=False):
    """One caller identity. For buyers, one running resource (instance, task, pod)."""

    access_key_id: str
    secret_access_key: str
    account_id: str
    session_token: str | None = None
    expires_at: datetime | None = None
    region: str | None = None
    """The Region the resource runs in; MeterUsage/RegisterUsage elsewhere are refused."""
    platform: str | None = None
    """ec2 | ecs | eks | fargate | …; RegisterUsage needs ecs, eks or fargate when set."""
    actions: frozenset[str] | None = None
    """The metering actions this key may call (IAM allow list); None allows all."""


class Price(msgspec.Struct, frozen=True, gc=False):
    """A dimension's price, for invoice previews: an exact decimal per unit, a currency."""

    price_per_unit: str
    currency: str


class Product(msgspec.Struct, frozen=True, gc=False):
    product_code: str
    seller_account_id: str
    type: ProductType
    dimensions: tuple[str, ...]
    fulfillment_url: str | None = None
    concurrent_agreements: bool = False
    pricing: Pricing = "usage"
    prices: dict[str, Price] = {}
    """By dimension; optional (the catalog's `prices`)."""

    @property
    def has_contract(self) -> bool:
        return self.pricing != "usage"


SubscriptionState = Literal["active", "unsubscribe-pending", "unsubscribed", "cancelled"]


class Subscription(msgspec.Struct, frozen=True, gc=False):
    product_code: str
    customer_aws_account_id: str
    customer_identifier: str
    license_arn: str
    agreement_id: str
    created_at: datetime
    ends_at: datetime | None = None
    """When the subscription stopped (or stops) accepting usage; None while active."""
    unsubscribed_at: datetime | None = None
    """When the buyer unsubscribed: usage is accepted until `ends_at`, an hour later."""
    free_trial: bool = False
    offer_id: str | None = None

    def is_active(self, now: datetime) -> bool:
        return self.ends_at is None or now < self.ends_at

    def state(self, now: datetime) -> SubscriptionState:
        if self.ends_at is None:
            return "active"
        if self.unsubscribed_at is None:
            return "active" if now < self.ends_at else "cancelled"
        return "unsubscribe-pending" if now < self.ends_at else "unsubscribed"


EntitlementType = Literal["integer", "decimal", "boolean", "string"]
ENTITLEMENT_TYPES: tuple[EntitlementType, ...] = ("integer", "decimal", "boolean", "string")


class Entitlement(msgspec.Struct, frozen=True, gc=False):
    """A contract's value for one dimension of a subscription, until `expires_at`."""

    license_arn: str
    dimension: str
    type: EntitlementType
    value: str
    """As text: "25", "2.5", "true", "gold"."""
    expires_at: datetime | None = None

    def is_current(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


class RegistrationToken(msgspec.Struct, frozen=True, gc=False):
    token: str
    product_code: str
    customer_aws_account_id: str
    license_arn: str
    issued_at: datetime
    expires_at: datetime


class SigningKey(msgspec.Struct, frozen=True, gc=False):
    """A RegisterUsage signing key of a container product, by integer version."""

    product_code: str
    version: int
    private_pem: str
    public_pem: str
    created_at: datetime


class Caller(msgspec.Struct, frozen=True, gc=False):
    """Who signed the request: the access key, its account and the signing Region."""

    access_key: AccessKey
    region: str
    admitted_for: str | None = None
    """The operation `MeteringService.admit` already let this caller make."""

    @property
    def account_id(self) -> str:
        return self.access_key.account_id


class Tag(msgspec.Struct, frozen=True, gc=False):
    key: str
    value: str


class Allocation(msgspec.Struct, frozen=True, gc=False):
    quantity: Quantity
    tags: tuple[Tag, ...] = ()


class UsageRecord(msgspec.Struct, frozen=True, gc=False):
    """One record of a BatchMeterUsage request, as sent."""

    timestamp: datetime
    dimension: str
    quantity: Quantity
    customer_identifier: str | None = None
    customer_aws_account_id: str | None = None
    license_arn: str | None = None
    allocations: tuple[Allocation, ...] | None = None


class MeterUsageRequest(msgspec.Struct, frozen=True, gc=False):
    product_code: str
    timestamp: datetime
    dimension: str
    quantity: Quantity
    allocations: tuple[Allocation, ...] | None = None
    dry_run: bool = False
    client_token: str | None = None


RecordStatus = Literal["Success", "CustomerNotSubscribed", "DuplicateRecord"]


class RecordResult(msgspec.Struct, frozen=True, gc=False):
    status: RecordStatus
    metering_record_id: str | None = None


class BatchOutcome(msgspec.Struct, frozen=True, gc=False):
    results: tuple[RecordResult, ...]
    """One per input record, in input order."""
    unprocessed: tuple[int, ...] = ()
    """Indexes of input records the service could not process (to be resent)."""


class SlotKey(msgspec.Struct, frozen=True, order=True, gc=False):
    """The dedupe identity: at most one record per slot, enforced by a unique key.

    BatchMeterUsage: product, customer, dimension and hour; a record sent by `LicenseArn`
    holds a different slot (`license_key`) from one sent by `ProductCode` (both billed, as on
    AWS). MeterUsage: product, dimension and hour per resource (the caller's access key).
    """

    product_code: str
    customer_aws_account_id: str
    resource: str
    license_key: str
    dimension: str
    hour: datetime


class MeteringRecord(msgspec.Struct, frozen=True, gc=False):
    record_id: str
    operation: Operation
    slot: SlotKey
    timestamp: datetime
    quantity: Quantity
    allocations: tuple[Allocation, ...] | None
    customer_identifier: str
    license_arn: str
    received_at: datetime
    accepted_late: bool = False
    """Accepted under clock travel, though outside its operation's window on the real
    clock: AWS would have refused it (a warning of `usage check`)."""

    @property
    def product_code(self) -> str:
        return self.slot.product_code

    def same_usage(self, other: MeteringRecord) -> bool:
        """Identical by value: the same quantity and the same allocations."""
        return self.quantity.same_value(other.quantity) and allocation_identity(
            self.allocations
        ) == allocation_identity(other.allocations)


class ClientTokenEntry(msgspec.Struct, frozen=True, gc=False):
    """A MeterUsage ClientToken, the request it was first used for, and its answer."""

    account_id: str
    client_token: str
    request_fingerprint: str
    record_id: str
    created_at: datetime


class ResolvedCustomer(msgspec.Struct, frozen=True, gc=False):
    product_code: str
    customer_aws_account_id: str
    license_arn: str
    agreement_id: str
    customer_identifier: str | None
    """None for concurrent-agreement products: AWS leaves it out for them."""


class RegisterUsageOutcome(msgspec.Struct, frozen=True, gc=False):
    signature: str
    public_key_rotation_timestamp: datetime | None = None


@dataclass(frozen=True)
class Catalog:
    """A whole catalog file, parsed and checked (see `domain.catalog`)."""

    accounts: tuple[Account, ...] = ()
    access_keys: tuple[AccessKey, ...] = ()
    products: tuple[Product, ...] = ()
    subscriptions: tuple[CatalogSubscription, ...] = field(default=())


class CatalogEntitlement(msgspec.Struct, frozen=True, gc=False):
    dimension: str
    type: EntitlementType
    value: str
    expires_at: datetime | None = None


class CatalogSubscription(msgspec.Struct, frozen=True, gc=False):
    product_code: str
    customer_aws_account_id: str
    customer_identifier: str | None = None
    license_arn: str | None = None
    agreement_id: str | None = None
    status: Literal["active", "cancelled"] = "active"
    entitlements: tuple[CatalogEntitlement, ...] | None = None
    """None: the stored ones stay; a list (even empty): exactly these."""


def allocation_identity(
    allocations: tuple[Allocation, ...] | None,
) -> tuple[tuple[int, tuple[tuple[str, str], ...]], ...]:
    """Allocations compared by value and regardless of order: retries may reorder them."""
    if not allocations:
        return ()
    return tuple(
        sorted(
            (a.quantity.micros, tuple(sorted((t.key, t.value) for t in a.tags)))
            for a in allocations
        )
    )
