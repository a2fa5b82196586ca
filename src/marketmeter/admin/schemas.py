"""The admin API's bodies, answers and query parameters, as msgspec types: the handlers
decode and encode with them, and the OpenAPI document's schemas are generated from them —
one definition of each shape."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from marketmeter.domain.controls import MAX_INTERNAL_ERRORS, MAX_LATENCY_MS, TestControls
from marketmeter.domain.marketplace import MAX_CLOCK_OFFSET
from marketmeter.domain.models import AccessKey, Entitlement, Product, Subscription
from marketmeter.domain.outbox import Attempt, Delivery
from marketmeter.domain.targets import EventTarget, Webhook
from marketmeter.domain.usage import StoredRecord

MAX_PAGE = 1000
"""Records per page at most."""
MAX_CLOCK_SECONDS = MAX_CLOCK_OFFSET.total_seconds()

# -- errors --------------------------------------------------------------------------------


class ErrorBody(msgspec.Struct, frozen=True):
    code: str
    """What went wrong, for programs: unauthorized, not_found, invalid_request, …"""
    message: str
    """What went wrong, for people."""
    details: dict[str, Any] = {}
    """More, when there is more: the offending `field`, …"""


class ErrorDocument(msgspec.Struct, frozen=True):
    error: ErrorBody


# -- the catalog -----------------------------------------------------------------------------


class AccessKeyView(msgspec.Struct, frozen=True):
    """An access key, never its secret."""

    access_key_id: str
    account_id: str
    temporary: bool
    expires_at: datetime | None
    region: str | None
    platform: str | None
    actions: list[str] | None


class AccountView(msgspec.Struct, frozen=True):
    account_id: str
    name: str | None
    access_keys: list[AccessKeyView]


class PriceView(msgspec.Struct, frozen=True):
    price_per_unit: str
    currency: str


class ProductView(msgspec.Struct, frozen=True):
    product_code: str
    seller_account_id: str
    type: Literal["saas", "ami", "container"]
    dimensions: list[str]
    fulfillment_url: str | None
    concurrent_agreements: bool
    pricing: Literal["usage", "contract", "contract_with_consumption"]
    prices: dict[str, PriceView]


class SubscriptionView(msgspec.Struct, frozen=True):
    product_code: str
    customer_aws_account_id: str
    customer_identifier: str
    license_arn: str
    agreement_id: str
    state: Literal["active", "unsubscribe-pending", "unsubscribed", "cancelled"]
    created_at: datetime
    ends_at: datetime | None
    unsubscribed_at: datetime | None
    free_trial: bool
    offer_id: str | None


class EntitlementView(msgspec.Struct, frozen=True):
    license_arn: str
    dimension: str
    type: Literal["integer", "decimal", "boolean", "string"]
    value: str
    expires_at: datetime | None


class CatalogDocument(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A catalog, as the catalog file holds it (docs/catalog.md); its entries are checked
    by the same rules as `marketmeter catalog apply` (422, naming the entry and field)."""

    accounts: list[dict[str, Any]] = []
    products: list[dict[str, Any]] = []
    subscriptions: list[dict[str, Any]] = []


class ApplySummaryView(msgspec.Struct, frozen=True):
    accounts: int
    access_keys: int
    products: int
    subscriptions: int


class SubscribeBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    customer_aws_account_id: str
    free_trial: bool = False
    offer_id: str | None = None
    post_to_fulfillment_url: bool = True
    """POST the registration token to the product's fulfillment URL, as the buyer's
    browser does (the answer is reported)."""


class FulfillmentView(msgspec.Struct, frozen=True):
    url: str
    status: int | None
    location: str | None
    error: str | None


class SubscribedView(msgspec.Struct, frozen=True):
    subscription: SubscriptionView
    registration_token: str
    changed: bool
    """False when the buyer was subscribed already (a fresh token all the same)."""
    fulfillment: FulfillmentView | None


class EntitlementBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    value: str
    type: Literal["integer", "decimal", "boolean", "string"] | None = None
    expires_at: datetime | None = None


class TokenBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    customer_aws_account_id: str
    expires_in_seconds: Annotated[int, msgspec.Meta(ge=1, le=315_360_000)] | None = None
    """1 second to 10 years; default: the server's token lifetime (4 hours)."""


class TokenView(msgspec.Struct, frozen=True):
    registration_token: str
    product_code: str
    customer_aws_account_id: str
    license_arn: str
    issued_at: datetime
    expires_at: datetime


class PublicKeyView(msgspec.Struct, frozen=True):
    product_code: str
    version: int
    public_key_pem: str
    created_at: datetime


# -- records and usage ----------------------------------------------------------------------


class AllocationView(msgspec.Struct, frozen=True):
    quantity: str
    tags: dict[str, str]


class RecordView(msgspec.Struct, frozen=True):
    record_id: str
    product_code: str
    customer_identifier: str | None
    customer_aws_account_id: str
    license_arn: str | None
    dimension: str
    quantity: str
    """An exact decimal."""
    timestamp: datetime
    """The hour of use, as sent."""
    allocations: list[AllocationView] | None
    operation: str
    """MeterUsage or BatchMeterUsage."""
    received_at: datetime
    resource: str | None
    accepted_late: bool
    """Accepted under clock travel, though AWS (on the real clock) would have refused it."""


class RecordPage(msgspec.Struct, frozen=True):
    records: list[RecordView]
    next_cursor: str | None
    """Pass as `cursor` for the next page; null on the last page."""


class RecordsQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    product: str | None = None
    customer: str | None = None
    """A CustomerIdentifier or an AWS account ID."""
    license_arn: str | None = None
    dimension: str | None = None
    operation: Literal["MeterUsage", "BatchMeterUsage"] | None = None
    start: datetime | None = msgspec.field(default=None, name="from")
    """Usage (timestamp) from this time (inclusive)."""
    end: datetime | None = msgspec.field(default=None, name="to")
    """Usage (timestamp) before this time (exclusive)."""
    received_from: datetime | None = None
    received_to: datetime | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE)] = 100
    """1–1000 records per page (format=json)."""
    cursor: str | None = None
    format: Literal["json", "jsonl"] = "json"
    """json: a page; jsonl: every record from the cursor on, one JSON object per line."""


class UsageQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    by: Literal["hour", "day", "month"] = "day"
    group: str = "customer,dimension"
    """Comma-separated: customer, dimension, tag:KEY; empty for none."""
    start: datetime | None = msgspec.field(default=None, name="from")
    """Default: the start of the current month (UTC)."""
    end: datetime | None = msgspec.field(default=None, name="to")
    """Default: now."""
    warnings: bool = False
    """Add the range's warnings (as `GET …/usage/warnings`): they read its records, so
    they cost far more than the totals."""


class WarningsQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    start: datetime | None = msgspec.field(default=None, name="from")
    """Default: the start of the current month (UTC)."""
    end: datetime | None = msgspec.field(default=None, name="to")
    """Default: now."""


class WarningView(msgspec.Struct, frozen=True):
    kind: Literal["billed-twice", "missed-hours", "late"]
    customer_aws_account_id: str
    customer_identifier: str | None
    hour: str
    """The hour billed twice, or the first hour missed."""
    hours: int
    dimension: str | None
    message: str


class InvoiceQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    month: str
    """YYYY-MM."""


class InvoiceLineView(msgspec.Struct, frozen=True):
    dimension: str
    quantity: str
    price_per_unit: str | None
    currency: str | None
    amount: str | None


class CustomerInvoiceView(msgspec.Struct, frozen=True):
    customer_identifier: str | None
    customer_aws_account_id: str
    lines: list[InvoiceLineView]
    totals: dict[str, str]


class InvoiceView(msgspec.Struct, frozen=True):
    product: str
    month: str
    customers: list[CustomerInvoiceView]
    totals: dict[str, str]
    """By currency."""


class UsageReportView(msgspec.Struct, frozen=True):
    product: str
    by: Literal["hour", "day", "month"]
    start: str = msgspec.field(name="from")
    end: str = msgspec.field(name="to")
    rows: list[dict[str, Any]] = []
    """Each: `period`, the group's keys (customer_identifier and customer_aws_account_id,
    dimension, tag:KEY — null for untagged usage), `quantity` (an exact decimal) and
    `records`."""
    total: str = "0"
    warnings: list[WarningView] | None = None
    """Only when asked for (`warnings=true`)."""


# -- notifications -------------------------------------------------------------------------


class WebhookBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    product_code: str
    url: str
    topic: Literal["subscription", "entitlement"] = "subscription"
    signature_version: Literal["1", "2"] = "1"


class WebhookView(msgspec.Struct, frozen=True):
    id: str
    product_code: str
    topic: Literal["subscription", "entitlement"]
    topic_arn: str
    url: str
    signature_version: Literal["1", "2"]
    created_at: datetime
    confirmed_at: datetime | None


class EventTargetBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str
    product_code: str | None = None
    """Only this product's events; null for every product's."""
    headers: dict[str, str] = {}


class EventTargetView(msgspec.Struct, frozen=True):
    id: str
    url: str
    product_code: str | None
    headers: dict[str, str]
    created_at: datetime


class AttemptView(msgspec.Struct, frozen=True):
    attempt: int
    at: datetime
    status: int | None
    error: str | None


class DeliveryView(msgspec.Struct, frozen=True):
    id: str
    kind: Literal["sns", "eventbridge"]
    target_id: str
    product_code: str
    name: str
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    created_at: datetime
    due_at: datetime
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    body: dict[str, Any]
    attempt_log: list[AttemptView]


class DeliveriesQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    product: str | None = None
    failed: bool = False


# -- test controls ------------------------------------------------------------------------


class FaultsView(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    operation: str | None = None
    throttle: bool = False
    throttle_rate: float = 0.0
    unprocessed_rate: float = 0.0
    latency_ms: int = 0


class FaultsBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    operation: str | None = None
    throttle: bool = False
    throttle_rate: float = 0.0
    unprocessed_rate: float = 0.0
    latency_ms: Annotated[int, msgspec.Meta(ge=0, le=MAX_LATENCY_MS)] = 0
    internal_errors: Annotated[int, msgspec.Meta(ge=0, le=MAX_INTERNAL_ERRORS)] = 0
    """The next N calls answer InternalServiceError."""


class ClockBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    at: datetime | None = None
    """Make the service clock read this now…"""
    advance_seconds: (
        Annotated[float, msgspec.Meta(ge=-MAX_CLOCK_SECONDS, le=MAX_CLOCK_SECONDS)] | None
    ) = None
    """…or move it on (or back, negative) by this much."""


class ControlsView(msgspec.Struct, frozen=True):
    service_time: datetime
    clock_offset_seconds: float
    faults: FaultsView | None
    internal_errors: int
    served_at: datetime | None


# -- from domain values ---------------------------------------------------------------------


def access_key_view(key: AccessKey) -> AccessKeyView:
    return AccessKeyView(
        key.access_key_id,
        key.account_id,
        key.session_token is not None,
        key.expires_at,
        key.region,
        key.platform,
        None if key.actions is None else sorted(key.actions),
    )


def product_view(p: Product) -> ProductView:
    return ProductView(
        p.product_code,
        p.seller_account_id,
        p.type,
        list(p.dimensions),
        p.fulfillment_url,
        p.concurrent_agreements,
        p.pricing,
        {d: PriceView(v.price_per_unit, v.currency) for d, v in p.prices.items()},
    )


def subscription_view(s: Subscription, now: datetime) -> SubscriptionView:
    return SubscriptionView(
        s.product_code,
        s.customer_aws_account_id,
        s.customer_identifier,
        s.license_arn,
        s.agreement_id,
        s.state(now),
        s.created_at,
        s.ends_at,
        s.unsubscribed_at,
        s.free_trial,
        s.offer_id,
    )


def entitlement_view(e: Entitlement) -> EntitlementView:
    return EntitlementView(e.license_arn, e.dimension, e.type, e.value, e.expires_at)


def record_view(r: StoredRecord) -> RecordView:
    return RecordView(
        r.record_id,
        r.product_code,
        r.customer_identifier,
        r.customer_aws_account_id,
        r.license_arn,
        r.dimension,
        str(r.quantity),
        r.timestamp,
        None
        if r.allocations is None
        else [AllocationView(str(a.quantity), a.tags) for a in r.allocations],
        r.operation,
        r.received_at,
        r.resource,
        r.accepted_late,
    )


def webhook_view(w: Webhook) -> WebhookView:
    return WebhookView(
        w.id,
        w.product_code,
        w.topic,
        w.topic_arn,
        w.url,
        w.signature_version,
        w.created_at,
        w.confirmed_at,
    )


def event_target_view(t: EventTarget) -> EventTargetView:
    return EventTargetView(t.id, t.url, t.product_code, dict(t.headers), t.created_at)


def delivery_view(d: Delivery, attempts: list[Attempt]) -> DeliveryView:
    return DeliveryView(
        d.id,
        d.kind,
        d.target_id,
        d.product_code,
        d.name,
        d.status,
        d.attempts,
        d.created_at,
        d.due_at,
        d.next_attempt_at,
        d.last_status,
        d.last_error,
        d.delivered_at,
        d.body,
        [AttemptView(a.attempt, a.at, a.status, a.error) for a in attempts],
    )


def controls_view(c: TestControls, real_now: datetime) -> ControlsView:
    faults = None
    if c.faults is not None:
        f = c.faults
        faults = FaultsView(
            f.operation, f.throttle, f.throttle_rate, f.unprocessed_rate, f.latency_ms
        )
    return ControlsView(
        real_now + c.clock_offset,
        c.clock_offset.total_seconds(),
        faults,
        c.internal_errors,
        c.served_at,
    )
