"""Read-back of stored metering records in the export format of DESIGN §3.

Both customer fields come from the subscription, whichever the seller sent; `Quantity` is a
JSON number and `QuantityAsDecimal` the exact decimal string; times are ISO 8601 UTC.
"""

from __future__ import annotations

from typing import Any

from marketmeter.domain.allocations import allocation_as_sent
from marketmeter.domain.models import MeteringRecord
from marketmeter.domain.quantities import MICROS_PER_UNIT, format_micros
from marketmeter.instants import iso

EXPORT_FIELDS = (
    "MeteringRecordId",
    "ProductCode",
    "CustomerIdentifier",
    "CustomerAWSAccountId",
    "LicenseArn",
    "Dimension",
    "Quantity",
    "QuantityAsDecimal",
    "Timestamp",
    "UsageAllocations",
    "Operation",
    "ReceivedAt",
)


def export_row(record: MeteringRecord) -> dict[str, Any]:
    micros = record.quantity.micros
    number: int | float = (
        micros // MICROS_PER_UNIT if micros % MICROS_PER_UNIT == 0 else micros / MICROS_PER_UNIT
    )
    row: dict[str, Any] = {
        "MeteringRecordId": record.record_id,
        "ProductCode": record.product_code,
        "CustomerIdentifier": record.customer_identifier or None,
        "CustomerAWSAccountId": record.slot.customer_aws_account_id,
        "LicenseArn": record.license_arn or None,
        "Dimension": record.slot.dimension,
        "Quantity": number,
        "QuantityAsDecimal": format_micros(micros),
        "Timestamp": iso(record.timestamp),
        "Operation": record.operation,
        "ReceivedAt": iso(record.received_at),
    }
    if record.allocations is not None:
        row["UsageAllocations"] = [allocation_as_sent(a) for a in record.allocations]
    return {k: row[k] for k in EXPORT_FIELDS if k in row}
