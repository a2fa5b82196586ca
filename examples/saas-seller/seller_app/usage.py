"""The usage log: one DynamoDB item per usage event, summed each hour by the metering job.

Table `USAGE_TABLE` (default "usage"): partition key `customer_aws_account_id` (S), sort
key `event_id` (S, a UUID); items also hold `dimension`, `quantity` (a number) and `at`
(ISO 8601, UTC, fixed width — so that strings compare as times do).
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from seller_app.aws import dynamodb_resource


def usage_table_name() -> str:
    return os.environ.get("USAGE_TABLE") or "usage"


def iso_utc(at: datetime) -> str:
    """`2025-01-31T09:05:00.000000Z`: the stored form of a time."""
    if at.tzinfo is None:
        raise ValueError(f"give a time with its timezone, not {at!r}")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_usage(
    customer_aws_account_id: str,
    dimension: str,
    quantity: int | str | Decimal,
    at: datetime,
    *,
    dynamodb: Any = None,
    table_name: str | None = None,
) -> str:
    """Log that the customer used `quantity` of `dimension` at `at`; the event's ID."""
    amount = Decimal(str(quantity))
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"a quantity is a non-negative number, not {quantity!r}")
    event_id = str(uuid.uuid4())
    table = (dynamodb or dynamodb_resource()).Table(table_name or usage_table_name())
    table.put_item(
        Item={
            "customer_aws_account_id": customer_aws_account_id,
            "event_id": event_id,
            "dimension": dimension,
            "quantity": amount,
            "at": iso_utc(at),
        }
    )
    return event_id
