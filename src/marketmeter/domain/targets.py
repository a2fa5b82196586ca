"""Where notifications go: SNS subscriptions of a seller's HTTP(S) endpoints to a
product's topics (the classic integration), and EventBridge-style targets (the current
one). Their models, their identities (topic and subscription ARNs) and their checks."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Literal, cast
from urllib.parse import urlsplit

import msgspec

from marketmeter.domain.errors import CatalogError

Topic = Literal["subscription", "entitlement"]
TOPICS: tuple[Topic, ...] = ("subscription", "entitlement")
SignatureVersion = Literal["1", "2"]

SNS_ACCOUNT = "287250355862"
"""The account AWS Marketplace's topics live in (as public sample code shows)."""
SNS_REGION = "us-east-1"


class Webhook(msgspec.Struct, frozen=True, gc=False):
    """An HTTP(S) endpoint subscribed to one of a product's SNS topics."""

    id: str
    product_code: str
    topic: Topic
    url: str
    signature_version: SignatureVersion
    token: str
    """What the SubscribeURL carries: confirms the subscription."""
    created_at: datetime
    confirmed_at: datetime | None = None

    @property
    def topic_arn(self) -> str:
        return topic_arn(self.product_code, self.topic)

    @property
    def subscription_arn(self) -> str:
        return f"{self.topic_arn}:{self.id}"


class EventTarget(msgspec.Struct, frozen=True, gc=False):
    """An endpoint that receives every event, as an EventBridge API destination does."""

    id: str
    url: str
    product_code: str | None
    """None: the events of every product."""
    headers: dict[str, str]
    created_at: datetime


def topic_arn(product_code: str, topic: Topic) -> str:
    return f"arn:aws:sns:{SNS_REGION}:{SNS_ACCOUNT}:aws-mp-{topic}-notification-{product_code}"


def new_webhook(
    product_code: str,
    topic: str,
    url: str,
    signature_version: str,
    now: datetime,
) -> Webhook:
    if topic not in TOPICS:
        raise CatalogError(f"topic must be subscription or entitlement, not {topic!r}")
    if signature_version not in ("1", "2"):
        raise CatalogError(f"signature version must be 1 or 2, not {signature_version!r}")
    return Webhook(
        id=str(uuid.uuid4()),
        product_code=product_code,
        topic=topic,
        url=checked_url(url),
        signature_version=cast(SignatureVersion, signature_version),
        token=secrets.token_hex(32),
        created_at=now,
    )


def new_event_target(
    url: str, product_code: str | None, headers: list[str], now: datetime
) -> EventTarget:
    parsed: dict[str, str] = {}
    for header in headers:
        name, sep, value = header.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name or any(c in name for c in " \t\r\n") or "\n" in value:
            raise CatalogError(f"a header is 'Name: value', not {header!r}")
        parsed[name] = value
    return EventTarget(str(uuid.uuid4()), checked_url(url), product_code, parsed, now)


def checked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CatalogError(f"not an HTTP(S) URL: {url!r}")
    return url
