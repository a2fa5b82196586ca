"""The admin API's routes: each one a thin call of the domain (the same functions the CLI
calls), described once in `ROUTES` — from which the app routes requests and the OpenAPI
document is generated."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from marketmeter.admin.errors import ApiError
from marketmeter.admin.schemas import (
    MAX_PAGE,
    AccountView,
    ApplySummaryView,
    CatalogDocument,
    ClockBody,
    ControlsView,
    DeliveriesQuery,
    DeliveryView,
    EntitlementBody,
    EntitlementView,
    EventTargetBody,
    EventTargetView,
    FaultsBody,
    FulfillmentView,
    InvoiceQuery,
    InvoiceView,
    ProductView,
    PublicKeyView,
    RecordPage,
    RecordsQuery,
    RecordView,
    SubscribeBody,
    SubscribedView,
    SubscriptionView,
    TokenBody,
    TokenView,
    UsageQuery,
    UsageReportView,
    WarningsQuery,
    WarningView,
    WebhookBody,
    WebhookView,
    access_key_view,
    controls_view,
    delivery_view,
    entitlement_view,
    event_target_view,
    product_view,
    record_view,
    subscription_view,
    webhook_view,
)
from marketmeter.domain.catalog_file import parse_catalog
from marketmeter.domain.controls import checked_faults
from marketmeter.domain.errors import NotFound
from marketmeter.domain.models import Product, Subscription
from marketmeter.domain.ports import RecordFilter
from marketmeter.domain.service import MeteringService
from marketmeter.domain.usage import parse_month, record_pages, stored_record
from marketmeter.fulfillment import subscribe_buyer


@dataclass(frozen=True, slots=True)
class Call:
    """One request, as a handler sees it: decoded and checked."""

    service: MeteringService
    params: dict[str, str]
    query: Any
    body: Any
    test_controls: bool


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    """Under /admin/v1, with {parameters}."""
    handler: Callable[[Call], Any]
    summary: str
    tag: str
    answer: Any = None
    """The answer's type (for the document); None: 204 No Content."""
    status: int = 200
    body: type | None = None
    query: type | None = None
    stream: str | None = None
    """A media type the handler may answer with an iterator of lines instead."""
    errors: tuple[int, ...] = field(default=())


# -- the catalog -------------------------------------------------------------------------------


def list_accounts(call: Call) -> list[AccountView]:
    store = call.service.store
    keys: dict[str, list[Any]] = {}
    for key in store.access_keys_of():
        keys.setdefault(key.account_id, []).append(access_key_view(key))
    return [
        AccountView(a.account_id, a.name, keys.get(a.account_id, [])) for a in store.list_accounts()
    ]


def apply_catalog(call: Call) -> ApplySummaryView:
    clear = call.query.clear if call.query is not None else False
    document = msgspec.to_builtins(call.body)
    summary = call.service.apply_catalog(parse_catalog(document), clear=clear)
    return ApplySummaryView(
        summary.accounts, summary.access_keys, summary.products, summary.subscriptions
    )


class ApplyQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    clear: bool = False
    """Delete everything else first (records too): the marketplace as the document says."""


def list_products(call: Call) -> list[ProductView]:
    return [product_view(p) for p in call.service.store.list_products()]


def _product(call: Call) -> Product:
    code = call.params["code"]
    product = call.service.store.get_product(code)
    if product is None:
        raise NotFound(f"no product {code!r}")
    return product


def get_product(call: Call) -> ProductView:
    return product_view(_product(call))


def _now(call: Call) -> datetime:
    return call.service.clock.now()


def list_subscriptions(call: Call) -> list[SubscriptionView]:
    product = _product(call)
    now = _now(call)
    return [
        subscription_view(s, now)
        for s in call.service.store.product_subscriptions(product.product_code)
    ]


def _subscription(call: Call) -> Subscription:
    product = _product(call)
    account = call.params["account"]
    found = call.service.store.find_subscriptions(
        product.product_code, customer_aws_account_id=account
    )
    if not found:
        raise NotFound(f"{account} has no subscription to {product.product_code}")
    return found[-1]


def get_subscription(call: Call) -> SubscriptionView:
    return subscription_view(_subscription(call), _now(call))


def subscribe(call: Call) -> SubscribedView:
    body: SubscribeBody = call.body
    code = call.params["code"]
    bought = subscribe_buyer(
        call.service,
        code,
        body.customer_aws_account_id,
        free_trial=body.free_trial,
        offer_id=body.offer_id,
        post=body.post_to_fulfillment_url,
    )
    done, answer = bought.done, bought.answer
    fulfillment = None
    if bought.fulfillment_url is not None and answer is not None:
        fulfillment = FulfillmentView(
            bought.fulfillment_url, answer.status, answer.location, answer.error
        )
    return SubscribedView(
        subscription_view(done.subscription, _now(call)),
        done.token.token,
        done.changed,
        fulfillment,
    )


def unsubscribe(call: Call) -> SubscriptionView:
    ended = call.service.marketplace.unsubscribe(call.params["code"], call.params["account"])
    return subscription_view(ended, _now(call))


def cancel(call: Call) -> list[SubscriptionView]:
    ended = call.service.cancel_subscription(call.params["code"], call.params["account"])
    now = _now(call)
    return [subscription_view(s, now) for s in ended]


def list_entitlements(call: Call) -> list[EntitlementView]:
    subscription = _subscription(call)
    return [
        entitlement_view(e) for e in call.service.store.entitlements_of(subscription.license_arn)
    ]


def set_entitlement(call: Call) -> EntitlementView:
    body: EntitlementBody = call.body
    entitlement = call.service.marketplace.set_entitlement(
        call.params["code"],
        call.params["account"],
        call.params["dimension"],
        body.value,
        type_=body.type,
        expires_at=body.expires_at,
    )
    return entitlement_view(entitlement)


def remove_entitlement(call: Call) -> None:
    call.service.marketplace.remove_entitlement(
        call.params["code"], call.params["account"], call.params["dimension"]
    )


def issue_token(call: Call) -> TokenView:
    body: TokenBody = call.body
    expires_in = (
        None if body.expires_in_seconds is None else timedelta(seconds=body.expires_in_seconds)
    )
    token = call.service.issue_registration_token(
        call.params["code"], body.customer_aws_account_id, expires_in
    )
    return TokenView(
        token.token,
        token.product_code,
        token.customer_aws_account_id,
        token.license_arn,
        token.issued_at,
        token.expires_at,
    )


def _version(call: Call) -> int:
    text = call.params["version"]
    if not text.isdigit():
        raise ApiError(
            400, "invalid_path", f"a key version is a number, not {text!r}", {"field": "version"}
        )
    return int(text)


def get_public_key(call: Call) -> PublicKeyView:
    key = call.service.public_key(_product(call).product_code, _version(call))
    return PublicKeyView(key.product_code, key.version, key.public_pem, key.created_at)


def rotate_key(call: Call) -> PublicKeyView:
    key = call.service.rotate_key(_product(call).product_code)
    return PublicKeyView(key.product_code, key.version, key.public_pem, key.created_at)


# -- records and usage -------------------------------------------------------------------------


def _cursor(text: str | None) -> int:
    if text is None:
        return 0
    try:
        seq = int(base64.urlsafe_b64decode(text.encode() + b"==").decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        seq = -1
    if seq < 0:
        raise ApiError(
            400,
            "invalid_query",
            "query parameter 'cursor': not a cursor this API gave",
            {"field": "cursor"},
        )
    return seq


def _make_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def list_records(call: Call) -> RecordPage | Iterator[bytes]:
    q: RecordsQuery = call.query
    where = RecordFilter(
        product_code=q.product,
        customer=q.customer,
        license_arn=q.license_arn,
        dimension=q.dimension,
        operation=q.operation,
        start=q.start,
        end=q.end,
        received_from=q.received_from,
        received_until=q.received_to,
    )
    after = _cursor(q.cursor)
    store = call.service.store
    if q.format == "jsonl":
        return _lines(call, where, after)
    rows = store.page_records(where, after=after, limit=q.limit + 1)
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return RecordPage(
        [record_view(stored_record(r.record)) for r in rows],
        _make_cursor(rows[-1].seq) if more else None,
    )


def _lines(call: Call, where: RecordFilter, after: int) -> Iterator[bytes]:
    encoder = msgspec.json.Encoder()
    for page in record_pages(call.service.store, where, after=after, size=MAX_PAGE):
        yield b"".join(encoder.encode(record_view(stored_record(r.record))) + b"\n" for r in page)


def get_record(call: Call) -> RecordView:
    record = call.service.store.get_record(call.params["record_id"])
    if record is None:
        raise NotFound(f"no record {call.params['record_id']!r}")
    return record_view(stored_record(record))


def usage_report(call: Call) -> dict[str, Any]:
    q: UsageQuery = call.query
    report = call.service.usage_report(
        call.params["code"],
        by=q.by,
        group=[g.strip() for g in q.group.split(",") if g.strip()],
        start=_utc(q.start),
        end=_utc(q.end),
        warnings=q.warnings,
    )
    return report.as_json()


def usage_warnings(call: Call) -> list[dict[str, Any]]:
    q: WarningsQuery = call.query
    found = call.service.usage_warnings(call.params["code"], start=_utc(q.start), end=_utc(q.end))
    return [w.as_json() for w in found]


def invoice(call: Call) -> dict[str, Any]:
    q: InvoiceQuery = call.query
    return call.service.invoice_preview(call.params["code"], parse_month(q.month)).as_json()


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


# -- notifications -------------------------------------------------------------------------------


def list_webhooks(call: Call) -> list[WebhookView]:
    return [webhook_view(w) for w in call.service.marketplace.webhooks()]


def add_webhook(call: Call) -> WebhookView:
    b: WebhookBody = call.body
    return webhook_view(
        call.service.marketplace.add_webhook(b.product_code, b.url, b.topic, b.signature_version)
    )


def remove_webhook(call: Call) -> None:
    call.service.marketplace.remove_webhook(call.params["id"])


def list_event_targets(call: Call) -> list[EventTargetView]:
    return [event_target_view(t) for t in call.service.marketplace.event_targets()]


def add_event_target(call: Call) -> EventTargetView:
    b: EventTargetBody = call.body
    headers = [f"{name}: {value}" for name, value in b.headers.items()]
    return event_target_view(
        call.service.marketplace.add_event_target(b.url, b.product_code, headers)
    )


def remove_event_target(call: Call) -> None:
    call.service.marketplace.remove_event_target(call.params["id"])


def list_deliveries(call: Call) -> list[DeliveryView]:
    q: DeliveriesQuery = call.query
    reports = call.service.marketplace.deliveries(q.product, failed_only=q.failed)
    return [delivery_view(r.delivery, r.attempts) for r in reports]


def retry_delivery(call: Call) -> DeliveryView:
    marketplace = call.service.marketplace
    retried = marketplace.retry_delivery(call.params["id"])
    return delivery_view(retried, call.service.store.attempts_of([retried.id])[retried.id])


# -- test controls -------------------------------------------------------------------------------


def _controls_enabled(call: Call) -> None:
    if not call.test_controls:
        raise ApiError(
            404, "not_found", "test controls are off: start the server with --test-controls"
        )


def get_controls(call: Call) -> ControlsView:
    _controls_enabled(call)
    return controls_view(call.service.marketplace.test_controls(), datetime.now(UTC))


def set_clock(call: Call) -> ControlsView:
    _controls_enabled(call)
    b: ClockBody = call.body
    if (b.at is None) == (b.advance_seconds is None):
        raise ApiError(
            422, "invalid_body", "give either 'at' or 'advance_seconds'", {"field": "at"}
        )
    marketplace = call.service.marketplace
    real_now = datetime.now(UTC)
    if b.at is not None:
        controls = marketplace.set_clock(_utc(b.at) or real_now, real_now)
    else:
        controls = marketplace.advance_clock(timedelta(seconds=b.advance_seconds or 0.0))
    return controls_view(controls, real_now)


def reset_clock(call: Call) -> ControlsView:
    _controls_enabled(call)
    return controls_view(call.service.marketplace.reset_clock(), datetime.now(UTC))


def set_faults(call: Call) -> ControlsView:
    _controls_enabled(call)
    b: FaultsBody = call.body
    faults = checked_faults(
        b.operation, b.throttle, b.throttle_rate, b.unprocessed_rate, b.latency_ms
    )
    return controls_view(
        call.service.marketplace.set_faults(faults, b.internal_errors), datetime.now(UTC)
    )


def clear_faults(call: Call) -> ControlsView:
    _controls_enabled(call)
    return controls_view(call.service.marketplace.clear_faults(), datetime.now(UTC))


# -- the table -----------------------------------------------------------------------------------

_P = "/products/{code}"
_S = _P + "/subscriptions/{account}"

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/accounts",
        list_accounts,
        "Accounts and their access keys (never secrets)",
        "catalog",
        list[AccountView],
    ),
    Route(
        "POST",
        "/catalog",
        apply_catalog,
        "Apply a catalog document (the YAML file's content as JSON)",
        "catalog",
        ApplySummaryView,
        body=CatalogDocument,
        query=ApplyQuery,
        errors=(400, 422),
    ),
    Route("GET", "/products", list_products, "Products", "catalog", list[ProductView]),
    Route("GET", _P, get_product, "A product", "catalog", ProductView, errors=(404,)),
    Route(
        "GET",
        _P + "/subscriptions",
        list_subscriptions,
        "A product's subscriptions, oldest first",
        "subscriptions",
        list[SubscriptionView],
        errors=(404,),
    ),
    Route(
        "POST",
        _P + "/subscriptions",
        subscribe,
        "Subscribe a buyer: a registration token, POSTed to the fulfillment URL",
        "subscriptions",
        SubscribedView,
        body=SubscribeBody,
        errors=(404, 422),
    ),
    Route(
        "GET",
        _S,
        get_subscription,
        "A buyer's subscription (the latest)",
        "subscriptions",
        SubscriptionView,
        errors=(404,),
    ),
    Route(
        "POST",
        _S + "/unsubscribe",
        unsubscribe,
        "The buyer unsubscribes: usage accepted for one more hour",
        "subscriptions",
        SubscriptionView,
        errors=(404, 422),
    ),
    Route(
        "POST",
        _S + "/cancel",
        cancel,
        "Cancel administratively, at once",
        "subscriptions",
        list[SubscriptionView],
        errors=(404, 422),
    ),
    Route(
        "GET",
        _S + "/entitlements",
        list_entitlements,
        "The subscription's entitlements",
        "subscriptions",
        list[EntitlementView],
        errors=(404,),
    ),
    Route(
        "PUT",
        _S + "/entitlements/{dimension}",
        set_entitlement,
        "Set an entitlement",
        "subscriptions",
        EntitlementView,
        body=EntitlementBody,
        errors=(404, 422),
    ),
    Route(
        "DELETE",
        _S + "/entitlements/{dimension}",
        remove_entitlement,
        "Remove an entitlement",
        "subscriptions",
        errors=(404, 422),
    ),
    Route(
        "POST",
        _P + "/registration-tokens",
        issue_token,
        "Issue a registration token",
        "subscriptions",
        TokenView,
        status=201,
        body=TokenBody,
        errors=(404, 422),
    ),
    Route(
        "GET",
        _P + "/public-keys/{version}",
        get_public_key,
        "A RegisterUsage public key",
        "catalog",
        PublicKeyView,
        errors=(400, 404),
    ),
    Route(
        "POST",
        _P + "/public-keys",
        rotate_key,
        "Make a new RegisterUsage signing key",
        "catalog",
        PublicKeyView,
        status=201,
        errors=(404,),
    ),
    Route(
        "GET",
        "/records",
        list_records,
        "Metering records, in the order stored: filters "
        "and cursor pages (format=json), or every one as JSON Lines (format=jsonl)",
        "records",
        RecordPage,
        query=RecordsQuery,
        stream="application/x-ndjson",
        errors=(400,),
    ),
    Route(
        "GET",
        "/records/{record_id}",
        get_record,
        "A metering record",
        "records",
        RecordView,
        errors=(404,),
    ),
    Route(
        "GET",
        _P + "/usage",
        usage_report,
        "The usage report: exact totals per period and group",
        "records",
        UsageReportView,
        query=UsageQuery,
        errors=(400, 404, 422),
    ),
    Route(
        "GET",
        _P + "/invoice",
        invoice,
        "An invoice preview: each customer's usage of a month priced by the catalog",
        "records",
        InvoiceView,
        query=InvoiceQuery,
        errors=(400, 404, 422),
    ),
    Route(
        "GET",
        _P + "/usage/warnings",
        usage_warnings,
        "Warnings: usage billed twice (by customer and by LicenseArn), missed hourly reports",
        "records",
        list[WarningView],
        query=WarningsQuery,
        errors=(400, 404, 422),
    ),
    Route(
        "GET",
        "/webhooks",
        list_webhooks,
        "SNS subscriptions (webhooks)",
        "notifications",
        list[WebhookView],
    ),
    Route(
        "POST",
        "/webhooks",
        add_webhook,
        "Subscribe an endpoint to a product's topic",
        "notifications",
        WebhookView,
        status=201,
        body=WebhookBody,
        errors=(404, 409, 422),
    ),
    Route(
        "DELETE",
        "/webhooks/{id}",
        remove_webhook,
        "Remove a webhook",
        "notifications",
        errors=(404,),
    ),
    Route(
        "GET",
        "/event-targets",
        list_event_targets,
        "EventBridge-shaped targets",
        "notifications",
        list[EventTargetView],
    ),
    Route(
        "POST",
        "/event-targets",
        add_event_target,
        "Send events to an endpoint",
        "notifications",
        EventTargetView,
        status=201,
        body=EventTargetBody,
        errors=(404, 409, 422),
    ),
    Route(
        "DELETE",
        "/event-targets/{id}",
        remove_event_target,
        "Remove an event target",
        "notifications",
        errors=(404,),
    ),
    Route(
        "GET",
        "/deliveries",
        list_deliveries,
        "Deliveries with their attempts, newest first",
        "notifications",
        list[DeliveryView],
        query=DeliveriesQuery,
        errors=(400,),
    ),
    Route(
        "POST",
        "/deliveries/{id}/retry",
        retry_delivery,
        "Send a failed delivery (or one waiting out its backoff) again now",
        "notifications",
        DeliveryView,
        errors=(404, 409),
    ),
    Route(
        "GET",
        "/test-controls",
        get_controls,
        "The test controls (servers started with --test-controls)",
        "test controls",
        ControlsView,
        errors=(404,),
    ),
    Route(
        "PUT",
        "/test-controls/clock",
        set_clock,
        "Set or advance the service clock",
        "test controls",
        ControlsView,
        body=ClockBody,
        errors=(404, 422),
    ),
    Route(
        "DELETE",
        "/test-controls/clock",
        reset_clock,
        "The service clock back to real time",
        "test controls",
        ControlsView,
        errors=(404,),
    ),
    Route(
        "PUT",
        "/test-controls/faults",
        set_faults,
        "Make calls fail as AWS can",
        "test controls",
        ControlsView,
        body=FaultsBody,
        errors=(404, 422),
    ),
    Route(
        "DELETE",
        "/test-controls/faults",
        clear_faults,
        "No more faults",
        "test controls",
        ControlsView,
        errors=(404,),
    ),
)
