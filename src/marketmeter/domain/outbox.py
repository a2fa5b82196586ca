"""The outbox: what is to be sent to a seller's endpoints, written in the transaction of the
change that caused it, and the rules of sending it — when, how often, for how long.

A delivery keeps its id (the SNS MessageId, the EventBridge event id) and its body across
every attempt, so a receiver can recognise a redelivery. Attempts follow exponential
backoff with full jitter, from 1 second up to 10 minutes between attempts, for 24 hours;
then the delivery is failed. Imports no HTTP: `marketmeter.delivery` sends.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec

DeliveryKind = Literal["sns", "eventbridge"]
DeliveryStatus = Literal["pending", "delivered", "failed", "cancelled"]

RETRY_FOR = timedelta(hours=24)
FIRST_RETRY = timedelta(seconds=1)
LONGEST_WAIT = timedelta(minutes=10)
ATTEMPT_TIMEOUT = 5.0
"""Seconds an endpoint has to answer one attempt."""


class Delivery(msgspec.Struct, frozen=True, gc=False):
    id: str
    kind: DeliveryKind
    target_id: str
    product_code: str
    name: str
    """The SNS action or Type, or the EventBridge detail-type: what it is, for people."""
    body: dict[str, Any]
    created_at: datetime
    due_at: datetime
    status: DeliveryStatus = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    cancel_key: str | None = None
    """Scheduled deliveries a later change may call off (the end of an unsubscribe hour)."""


class Attempt(msgspec.Struct, frozen=True, gc=False):
    delivery_id: str
    attempt: int
    at: datetime
    status: int | None
    error: str | None


def new_delivery_id() -> str:
    return str(uuid.uuid4())


def next_attempt(delivery: Delivery, attempted: int, now: datetime) -> datetime | None:
    """When to try again after `attempted` failed attempts; None once 24 hours are spent."""
    if now - delivery.due_at >= RETRY_FOR:
        return None
    ceiling = min(LONGEST_WAIT, FIRST_RETRY * 2 ** min(attempted - 1, 20))
    wait = timedelta(seconds=random.uniform(FIRST_RETRY.total_seconds(), ceiling.total_seconds()))
    return min(now + wait, delivery.due_at + RETRY_FOR)


def retryable(delivery: Delivery) -> bool:
    """A delivery a person may send again now: failed (its 24 hours spent), or pending with
    failed attempts behind it (waiting out a backoff). Not one delivered or called off, nor
    one that is not due yet (the end of an unsubscribe hour must not arrive early)."""
    return delivery.status == "failed" or (delivery.status == "pending" and delivery.attempts > 0)


def succeeded(status: int) -> bool:
    """An endpoint's answer that ends the delivery: any 2xx (SNS and EventBridge alike)."""
    return 200 <= status < 300
