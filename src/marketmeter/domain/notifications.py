"""What AWS Marketplace tells a seller when a customer's subscription changes, as it tells
it: SNS messages on the product's two topics (spec lifecycle §2) and EventBridge events
(§1). This module decides what is sent, to whom, and when; the deliveries are written
with the change (the outbox) and `marketmeter.delivery` signs and sends them.

Decisions where AWS leaves it open (docs/lifecycle.md):
- `offer-identifier` is in every subscription message of a subscription made with an
  offer; `isFreeTrialTermPresent` is in every one, "true" or "false".
- A buyer's unsubscribe: `unsubscribe-pending` and "Purchase Agreement Ended" at once,
  `unsubscribe-success` and "License Deprovisioned" when the final hour closes. An
  administrative cancel sends all four at once.
- `product.id` is "prod-" and 13 characters derived from the product code; the offer id
  of a subscription without an offer is "offer-" and a code derived from the product.
- Agreement events go out as "- Proposer", license events as "- Manufacturer": the seller
  is both on a direct offer.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import orjson

from marketmeter.domain.models import Product, Subscription
from marketmeter.domain.outbox import Delivery, new_delivery_id
from marketmeter.domain.targets import SNS_REGION, EventTarget, Webhook

Change = Literal["subscribed", "unsubscribe-pending", "unsubscribed", "cancelled", "amended"]

SOURCE = "aws.agreement-marketplace"
CREATED = "Purchase Agreement Created - Proposer"
AMENDED = "Purchase Agreement Amended - Proposer"
ENDED = "Purchase Agreement Ended - Proposer"
LICENSE_UPDATED = "License Updated - Manufacturer"
LICENSE_DEPROVISIONED = "License Deprovisioned - Manufacturer"

_SNS_ACTIONS: dict[Change, tuple[str, ...]] = {
    "subscribed": ("subscribe-success",),
    "unsubscribe-pending": ("unsubscribe-pending",),
    "unsubscribed": ("unsubscribe-success",),
    "cancelled": ("unsubscribe-pending", "unsubscribe-success"),
    "amended": ("entitlement-updated",),
}
_EVENTS: dict[Change, tuple[str, ...]] = {
    "subscribed": (CREATED, LICENSE_UPDATED),
    "unsubscribe-pending": (ENDED,),
    "unsubscribed": (LICENSE_DEPROVISIONED,),
    "cancelled": (ENDED, LICENSE_DEPROVISIONED),
    "amended": (AMENDED, LICENSE_UPDATED),
}


def deliveries_for(
    change: Change,
    *,
    product: Product,
    subscription: Subscription,
    webhooks: Sequence[Webhook],
    targets: Sequence[EventTarget],
    now: datetime,
    due_at: datetime | None = None,
    cancel_key: str | None = None,
) -> list[Delivery]:
    """Every delivery a change makes: each SNS message to each confirmed subscription of
    its topic, each event to each target. One message (one MessageId, one event id) goes
    to all its receivers, as SNS and EventBridge send one to all subscribers."""
    at = due_at or now
    topic = "entitlement" if change == "amended" else "subscription"
    out: list[Delivery] = []
    for action in _SNS_ACTIONS[change]:
        message = sns_message(action, product, subscription)
        envelope = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "Message": orjson.dumps(message).decode(),
            "Timestamp": iso_millis(at),
        }
        for webhook in webhooks:
            if webhook.confirmed_at is None or webhook.topic != topic:
                continue
            body = {**envelope, "TopicArn": webhook.topic_arn}
            out.append(_delivery("sns", webhook.id, action, body, product, now, at, cancel_key))
    for detail_type in _EVENTS[change]:
        event = eventbridge_event(detail_type, product, subscription, at, change)
        for target in targets:
            out.append(
                _delivery(
                    "eventbridge", target.id, detail_type, event, product, now, at, cancel_key
                )
            )
    return out


def sns_message(action: str, product: Product, subscription: Subscription) -> dict[str, Any]:
    message: dict[str, Any] = {
        "action": action,
        "customer-identifier": subscription.customer_identifier,
        "product-code": product.product_code,
    }
    if action == "entitlement-updated":
        return message
    if subscription.offer_id is not None:
        message["offer-identifier"] = subscription.offer_id
    message["isFreeTrialTermPresent"] = "true" if subscription.free_trial else "false"
    return message


def eventbridge_event(
    detail_type: str,
    product: Product,
    subscription: Subscription,
    at: datetime,
    change: Change,
) -> dict[str, Any]:
    agreement_id = subscription.agreement_id
    detail: dict[str, Any] = {"requestId": str(uuid.uuid4()), "catalog": "AWSMarketplace"}
    parties = {
        "acceptor": {"accountId": subscription.customer_aws_account_id},
        "proposer": {"accountId": product.seller_account_id},
        "offer": {"id": offer_id(product, subscription)},
    }
    if detail_type in (LICENSE_UPDATED, LICENSE_DEPROVISIONED):
        detail["agreement"] = {"id": agreement_id}
        detail["product"] = {"code": product.product_code, "id": product_id(product)}
        detail["license"] = {"arn": subscription.license_arn}
    elif detail_type == ENDED:
        detail["agreement"] = {"id": agreement_id, "status": "CANCELLED"}
    else:
        detail["agreement"] = {
            "id": agreement_id,
            "intent": "NEW" if detail_type == CREATED else "AMEND",
            "status": "ACTIVE",
            "acceptanceTime": iso_seconds(subscription.created_at),
            "startTime": iso_seconds(subscription.created_at),
        }
        detail["resaleAuthorization"] = {"id": None}
        detail["product"] = {"id": product_id(product)}
    detail.update(parties)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": SOURCE,
        "account": product.seller_account_id,
        "time": iso_seconds(at),
        "region": SNS_REGION,
        "resources": [f"arn:aws:aws-marketplace::aws:agreement:{agreement_id}"],
        "detail": detail,
    }


def product_id(product: Product) -> str:
    return "prod-" + _code(product.product_code, 13)


def offer_id(product: Product, subscription: Subscription) -> str:
    return subscription.offer_id or "offer-" + _code("public:" + product.product_code, 13)


def _code(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def iso_seconds(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _delivery(  # noqa: PLR0917 (one call site each way, in the order of the fields)
    kind: Literal["sns", "eventbridge"],
    target_id: str,
    name: str,
    body: dict[str, Any],
    product: Product,
    now: datetime,
    due_at: datetime,
    cancel_key: str | None,
) -> Delivery:
    return Delivery(
        id=new_delivery_id(),
        kind=kind,
        target_id=target_id,
        product_code=product.product_code,
        name=name,
        body=body,
        created_at=now,
        due_at=due_at,
        next_attempt_at=due_at,
        cancel_key=cancel_key,
    )
