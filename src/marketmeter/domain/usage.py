"""Reading back what was metered: stored records as plain typed values (`StoredRecord`),
chosen by product, customer, dimension and hour of use; and the usage report — exact
totals per period (hour, day or month) and group (customer, dimension, a tag's value).

The report's JSON form is the one `usage report --format json` and the admin API give
(see `UsageReport.as_json`). It is summed here from the records themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from marketmeter.domain.errors import CatalogError
from marketmeter.domain.models import MeteringRecord, Operation
from marketmeter.domain.ports import Store
from marketmeter.domain.quantities import MICROS_PER_UNIT, format_micros
from marketmeter.instants import iso

Period = Literal["hour", "day", "month"]
PERIODS: tuple[Period, ...] = ("hour", "day", "month")
DEFAULT_GROUP = ("customer", "dimension")


def to_decimal(micros: int) -> Decimal:
    return Decimal(format_micros(micros))


@dataclass(frozen=True, slots=True)
class StoredAllocation:
    quantity: Decimal
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A metering record as stored: both customer fields (from the subscription, whichever
    was sent), the hour of use (`timestamp`, as sent) and the exact quantity."""

    record_id: str
    product_code: str
    customer_identifier: str | None
    customer_aws_account_id: str
    license_arn: str | None
    dimension: str
    quantity: Decimal
    timestamp: datetime
    allocations: tuple[StoredAllocation, ...] | None
    operation: Operation
    received_at: datetime
    resource: str | None
    """MeterUsage: the calling resource (its access key); None for BatchMeterUsage."""

    @property
    def hour(self) -> datetime:
        return self.timestamp.replace(minute=0, second=0, microsecond=0)


def stored_record(record: MeteringRecord) -> StoredRecord:
    allocations = (
        None
        if record.allocations is None
        else tuple(
            StoredAllocation(to_decimal(a.quantity.micros), {t.key: t.value for t in a.tags})
            for a in record.allocations
        )
    )
    return StoredRecord(
        record_id=record.record_id,
        product_code=record.product_code,
        customer_identifier=record.customer_identifier or None,
        customer_aws_account_id=record.slot.customer_aws_account_id,
        license_arn=record.license_arn or None,
        dimension=record.slot.dimension,
        quantity=to_decimal(record.quantity.micros),
        timestamp=record.timestamp,
        allocations=allocations,
        operation=record.operation,
        received_at=record.received_at,
        resource=record.slot.resource or None,
    )


@dataclass(frozen=True, slots=True)
class RecordQuery:
    product_code: str | None = None
    customer: str | None = None
    """A CustomerIdentifier or an AWS account ID."""
    dimension: str | None = None
    start: datetime | None = None
    """Usage from this time on (inclusive)…"""
    end: datetime | None = None
    """…until this time (exclusive)."""

    def admits(self, r: StoredRecord) -> bool:
        return (
            (
                self.customer is None
                or self.customer in (r.customer_identifier, r.customer_aws_account_id)
            )
            and (self.dimension is None or r.dimension == self.dimension)
            and (self.start is None or r.timestamp >= self.start)
            and (self.end is None or r.timestamp < self.end)
        )


def find_records(store: Store, query: RecordQuery) -> Iterator[StoredRecord]:
    """The stored records the query admits, in the order stored."""
    for record in store.iter_records(query.product_code):
        stored = stored_record(record)
        if query.admits(stored):
            yield stored


# -- the usage report ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageRow:
    period: datetime
    keys: dict[str, str | None]
    """customer_identifier and customer_aws_account_id (group "customer"), dimension,
    tag:KEY (None: untagged)."""
    quantity: Decimal
    records: int


@dataclass(frozen=True, slots=True)
class UsageReport:
    product_code: str
    by: Period
    start: datetime
    end: datetime
    group: tuple[str, ...]
    rows: tuple[UsageRow, ...]
    total: Decimal = field(default=Decimal(0))

    def as_json(self) -> dict[str, Any]:
        return {
            "product": self.product_code,
            "by": self.by,
            "from": iso_z(self.start),
            "to": iso_z(self.end),
            "rows": [
                {
                    "period": iso_z(r.period),
                    **r.keys,
                    "quantity": str(r.quantity),
                    "records": r.records,
                }
                for r in self.rows
            ],
            "total": str(self.total),
        }


def iso_z(at: datetime) -> str:
    return iso(at).replace(".000Z", "Z")


def checked_group(group: Sequence[str]) -> tuple[str, ...]:
    for g in group:
        if g not in ("customer", "dimension") and not (g.startswith("tag:") and len(g) > 4):
            raise CatalogError(f"group by customer, dimension or tag:KEY, not {g!r}")
    if len(set(group)) != len(group):
        raise CatalogError(f"a group is named twice: {', '.join(group)}")
    return tuple(group)


def period_start(at: datetime, by: Period) -> datetime:
    at = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if by == "hour":
        return at
    at = at.replace(hour=0)
    return at if by == "day" else at.replace(day=1)


def usage_report(
    records: Iterable[StoredRecord],
    product_code: str,
    *,
    by: Period,
    start: datetime,
    end: datetime,
    group: Sequence[str] = DEFAULT_GROUP,
) -> UsageReport:
    """Exact totals of the product's records whose hour of use is in [start, end)."""
    if by not in PERIODS:
        raise CatalogError(f"by hour, day or month, not {by!r}")
    if start >= end:
        raise CatalogError("the report's start must be before its end")
    group = checked_group(group)
    tag_keys = [g[4:] for g in group if g.startswith("tag:")]
    sums: dict[tuple[Any, ...], list[int]] = {}
    for r in records:
        if r.product_code != product_code or not start <= r.timestamp < end:
            continue
        period = period_start(r.timestamp, by)
        base: list[tuple[str, str | None]] = []
        for g in group:
            if g == "customer":
                base += [
                    ("customer_identifier", r.customer_identifier),
                    ("customer_aws_account_id", r.customer_aws_account_id),
                ]
            elif g == "dimension":
                base.append(("dimension", r.dimension))
        for parts, micros in _tag_parts(r, tag_keys):
            key = (period, tuple(base), parts)
            entry = sums.setdefault(key, [0, 0])
            entry[0] += micros
            entry[1] += 1
    rows = tuple(
        UsageRow(period, dict(base) | dict(parts), to_decimal(micros), count)
        for (period, base, parts), (micros, count) in sorted(sums.items(), key=_row_order)
    )
    total = to_decimal(sum(m for m, _ in sums.values()))
    return UsageReport(product_code, by, start, end, group, rows, total)


def _tag_parts(
    r: StoredRecord, tag_keys: list[str]
) -> list[tuple[tuple[tuple[str, str | None], ...], int]]:
    """The record's quantity split by the tag values of its allocations (untagged usage:
    None), when the report groups by tags; else the whole record."""
    whole = int(r.quantity * MICROS_PER_UNIT)
    if not tag_keys:
        return [((), whole)]
    if not r.allocations:
        return [(tuple((f"tag:{k}", None) for k in tag_keys), whole)]
    return [
        (
            tuple((f"tag:{k}", a.tags.get(k)) for k in tag_keys),
            int(a.quantity * MICROS_PER_UNIT),
        )
        for a in r.allocations
    ]


def _row_order(item: tuple[tuple[Any, ...], list[int]]) -> tuple[Any, ...]:
    period, base, parts = item[0]
    return (period, [(k, v or "") for k, v in base], [(k, v or "") for k, v in parts])
