"""The hourly metering job: sum an hour's usage per customer and dimension, and report it
to AWS Marketplace with BatchMeterUsage.

Every record is stamped with the hour of use, so running the job again for the same hour
(after a crash, say) sends the same records, which AWS recognises as duplicates and does
not charge twice.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr

from seller_app.aws import dynamodb_resource, metering_client
from seller_app.usage import iso_utc, usage_table_name

MAX_BATCH = 25
"""BatchMeterUsage takes at most 25 records."""
DEFAULT_ATTEMPTS = 5
DEFAULT_RETRY_SLEEP = 0.2

Key = tuple[str, str]
"""(customer AWS account ID, dimension)"""


@dataclass
class MeteringSummary:
    metered: dict[Key, Decimal] = field(default_factory=dict)
    """What AWS accepted, per (customer, dimension)."""
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    """(customer, dimension, status) of what it did not: `CustomerNotSubscribed`,
    `DuplicateRecord`, or `Unprocessed` when still unprocessed after every attempt."""


def meter_hour(
    hour_start: datetime,
    product_code: str,
    *,
    metering: Any = None,
    dynamodb: Any = None,
    table_name: str | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    retry_sleep: float = DEFAULT_RETRY_SLEEP,
) -> MeteringSummary:
    """Meter the usage logged in [hour_start, hour_start + 1 h)."""
    if hour_start.tzinfo is None or hour_start != hour_start.replace(
        minute=0, second=0, microsecond=0
    ):
        raise ValueError(f"give the start of an hour, with its timezone, not {hour_start!r}")
    totals = hourly_totals(hour_start, dynamodb=dynamodb, table_name=table_name)
    client = metering or metering_client()
    records = [_usage_record(hour_start, key, totals[key]) for key in sorted(totals)]
    summary = MeteringSummary()
    for i in range(0, len(records), MAX_BATCH):
        batch = records[i : i + MAX_BATCH]
        _send(
            client,
            product_code,
            batch,
            totals=totals,
            summary=summary,
            attempts=attempts,
            retry_sleep=retry_sleep,
        )
    return summary


def hourly_totals(
    hour_start: datetime, *, dynamodb: Any = None, table_name: str | None = None
) -> dict[Key, Decimal]:
    """The usage logged in the hour, summed per (customer, dimension)."""
    table = (dynamodb or dynamodb_resource()).Table(table_name or usage_table_name())
    in_hour = Attr("at").gte(iso_utc(hour_start)) & Attr("at").lt(
        iso_utc(hour_start + timedelta(hours=1))
    )
    scan: dict[str, Any] = {"FilterExpression": in_hour}
    totals: dict[Key, Decimal] = defaultdict(Decimal)
    while True:
        page = table.scan(**scan)
        for item in page["Items"]:
            totals[item["customer_aws_account_id"], item["dimension"]] += Decimal(item["quantity"])
        if "LastEvaluatedKey" not in page:
            return dict(totals)
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _usage_record(hour_start: datetime, key: Key, quantity: Decimal) -> dict[str, Any]:
    customer, dimension = key
    record: dict[str, Any] = {
        "Timestamp": hour_start,
        "CustomerAWSAccountId": customer,
        "Dimension": dimension,
    }
    if quantity == quantity.to_integral_value():
        record["Quantity"] = int(quantity)
    else:
        record["QuantityAsDecimal"] = format(quantity, "f")
    return record


def _key(record: dict[str, Any]) -> Key:
    customer = record.get("CustomerAWSAccountId") or record.get("CustomerIdentifier") or ""
    return customer, record["Dimension"]


def _send(
    client: Any,
    product_code: str,
    batch: list[dict[str, Any]],
    *,
    totals: dict[Key, Decimal],
    summary: MeteringSummary,
    attempts: int,
    retry_sleep: float,
) -> None:
    """One batch, resending what comes back unprocessed (nothing of it was stored)."""
    pending = {_key(r): r for r in batch}
    for attempt in range(attempts):
        if attempt:
            time.sleep(retry_sleep)
        answer = client.batch_meter_usage(
            ProductCode=product_code, UsageRecords=list(pending.values())
        )
        for result in answer.get("Results", []):
            customer, dimension = key = _key(result["UsageRecord"])
            if result["Status"] == "Success":
                summary.metered[key] = totals[key]
            else:
                summary.failed.append((customer, dimension, result["Status"]))
        unprocessed = {_key(r) for r in answer.get("UnprocessedRecords", [])}
        pending = {k: r for k, r in pending.items() if k in unprocessed}
        if not pending:
            return
    summary.failed += [(customer, dimension, "Unprocessed") for customer, dimension in pending]
