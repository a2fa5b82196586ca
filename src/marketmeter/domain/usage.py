"""Reading back what was metered: stored records as plain typed values (`StoredRecord`),
chosen by a `RecordFilter`; and the usage report — exact
totals per period (hour, day or month) and group (customer, dimension, a tag's value).

The report's JSON form is the one `usage report --format json` and the admin API give
(see `UsageReport.as_json`). Its totals come from the rollups the store keeps in step with
every insert (`UsageSlice`): a report reads as many rows as it has periods and groups,
however many records they hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any, Literal

import orjson

from marketmeter.domain.errors import CatalogError, NotFound
from marketmeter.domain.models import Allocation, MeteringRecord, Operation, Product, Tag
from marketmeter.domain.ports import (
    Reader,
    RecordFilter,
    StoredRecordRow,
    UsageSlice,
    UsageSource,
)
from marketmeter.domain.quantities import MICROS_PER_UNIT, format_micros
from marketmeter.domain.timewindow import start_of_next_month
from marketmeter.instants import iso

Period = Literal["hour", "day", "month"]
PERIODS: tuple[Period, ...] = ("hour", "day", "month")
DEFAULT_GROUP = ("customer", "dimension")


def to_decimal(micros: int) -> Decimal:
    whole, fraction = divmod(micros, MICROS_PER_UNIT)
    return Decimal(format_micros(micros)) if fraction else Decimal(whole)  # (the same digits)


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
    by_license_arn: bool = False
    """Sent with a LicenseArn (else by CustomerIdentifier or account)."""
    accepted_late: bool = False
    """Accepted under clock travel, though AWS (on the real clock) would have refused it."""

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
        by_license_arn=bool(record.slot.license_key),
        accepted_late=record.accepted_late,
    )


def record_pages(
    store: Reader, where: RecordFilter, *, after: int = 0, size: int = 1000
) -> Iterator[list[StoredRecordRow]]:
    """The stored records the filter admits, stored after `after`, in the order stored, a
    page of `size` at a time (no empty page)."""
    while True:
        rows = store.page_records(where, after=after, limit=size)
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = rows[-1].seq


def find_records(store: Reader, where: RecordFilter) -> Iterator[StoredRecord]:
    """Every stored record the filter admits, in the order stored."""
    for page in record_pages(store, where):
        for row in page:
            yield stored_record(row.record)


# -- tag sets ----------------------------------------------------------------------------


def tag_set_key(tags: Iterable[Tag]) -> str:
    """One allocation's tags as one text, the same whatever their order: sorted JSON
    (`{"k":"v",…}`); "" for none."""
    pairs = sorted((t.key, t.value) for t in tags)
    return orjson.dumps(dict(pairs)).decode() if pairs else ""


def tag_set_values(key: str) -> dict[str, str]:
    return orjson.loads(key) if key else {}


def tag_sets(allocations: Sequence[Allocation] | None, micros: int) -> list[tuple[str, int, int]]:
    """How a record's quantity (`micros`) splits over the tag sets of its allocations:
    (tag set, millionths, allocations) per distinct set, its first allocation's set first.
    An untagged record: one part, ("", micros, 1)."""
    if not allocations:
        return [("", micros, 1)]
    parts: dict[str, list[int]] = {}
    for a in allocations:
        part = parts.setdefault(tag_set_key(a.tags), [0, 0])
        part[0] += a.quantity.micros
        part[1] += 1
    return [(key, m, n) for key, (m, n) in parts.items()]


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
    warnings: tuple[UsageWarning, ...] | None = None
    """`usage_warnings` of the report's range, when asked for (they read its records)."""

    def as_json(self) -> dict[str, Any]:
        document = {
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
        if self.warnings is not None:
            document["warnings"] = [w.as_json() for w in self.warnings]
        return document


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


def next_period(at: datetime, by: Period) -> datetime:
    """The start of the period after the one `at` starts."""
    if by == "hour":
        return at + timedelta(hours=1)
    if by == "day":
        return at + timedelta(days=1)
    return start_of_next_month(at)


def report_range(start: datetime, end: datetime, by: Period) -> tuple[datetime, datetime]:
    """The range a report covers: [start, end) widened to whole hours (by hour) or whole
    days (by day or month), UTC. A record counts for the hour of its timestamp — the unit
    AWS meters and bills — so a report never splits an hour, nor a day of its periods."""
    grain: Period = "hour" if by == "hour" else "day"
    first = period_start(start, grain)
    last = period_start(end, grain)
    if last < end.astimezone(UTC):
        last = next_period(last, grain)
    return first, last


def known_product(store: Reader, product_code: str) -> Product:
    product = store.get_product(product_code)
    if product is None:
        raise NotFound(f"no product {product_code!r}")
    return product


def default_range(now: datetime) -> tuple[datetime, datetime]:
    """From the start of the current month (UTC) until now."""
    return period_start(now, "month"), now


def usage_report(
    store: Reader,
    product_code: str,
    *,
    by: Period,
    start: datetime,
    end: datetime,
    group: Sequence[str] = DEFAULT_GROUP,
) -> UsageReport:
    """Exact totals of the product's usage per period and group, in the report's range
    (`report_range`), from the rollups: one question per period, or one in all by hour."""
    if by not in PERIODS:
        raise CatalogError(f"by hour, day or month, not {by!r}")
    group = checked_group(group)
    start, end = report_range(start, end, by)
    if start >= end:
        raise CatalogError("the report's start must be before its end")
    by_customer = "customer" in group
    by_dimension = "dimension" in group
    tag_keys = [g[4:] for g in group if g.startswith("tag:")]
    by_tags = bool(tag_keys)
    if by == "hour":
        source: UsageSource = "records" if by_customer else "hours"
        slices = [
            UsageSlice(
                product_code,
                start,
                end,
                source,
                per_hour=True,
                by_customer=by_customer,
                by_tags=by_tags,
            )
        ]
    else:
        # Per customer: each month's days in one question (the day rollup's key begins
        # with the month); else each period's hours.
        step: Period = "month" if by_customer else by
        slices = []
        at = start
        while at < end:
            until = min(next_period(period_start(at, step), step), end)
            slices.append(
                UsageSlice(
                    product_code,
                    at,
                    until,
                    "days" if by_customer else "hours",
                    by_customer=by_customer,
                    by_tags=by_tags,
                    per_day=by_customer and by == "day",
                )
            )
            at = until
    # A row's key: its period, then the values of `names` (this runs for every sum read:
    # flat tuples, hashed and compared faster than pairs of name and value).
    names = [
        *(("customer_identifier", "customer_aws_account_id") if by_customer else ()),
        *(("dimension",) if by_dimension else ()),
        *(f"tag:{k}" for k in tag_keys),
    ]
    sums: dict[tuple[Any, ...], list[int]] = {}
    tag_values: dict[str, dict[str, str]] = {}
    for question in slices:
        whole = period_start(question.start, by)
        for s in store.usage_sums(question):
            key: tuple[Any, ...] = (whole if s.at is None else s.at,)
            if by_customer:
                key += (s.customer_identifier, s.customer_aws_account_id)
            if by_dimension:
                key += (s.dimension,)
            if by_tags:
                values = tag_values.get(s.tags)
                if values is None:
                    values = tag_values[s.tags] = tag_set_values(s.tags)
                key += tuple(values.get(k) for k in tag_keys)
            entry = sums.get(key)
            if entry is None:
                sums[key] = [s.micros, s.count]
            else:
                entry[0] += s.micros
                entry[1] += s.count
    rows = tuple(
        UsageRow(key[0], dict(zip(names, key[1:], strict=True)), to_decimal(micros), count)
        for key, (micros, count) in sorted(sums.items(), key=_row_order)
    )
    total = to_decimal(sum(m for m, _ in sums.values()))
    return UsageReport(product_code, by, start, end, group, rows, total)


def product_usage(
    store: Reader,
    now: datetime,
    product_code: str,
    *,
    by: Period = "day",
    group: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    warnings: bool = False,
) -> UsageReport:
    """`usage report` and `GET /admin/v1/products/{code}/usage`: the product's report,
    from the start of the month until `now` unless told otherwise; with `warnings`, the
    warnings of its range too (`usage_warnings`: they read the range's records, so they
    cost far more than the totals)."""
    known_product(store, product_code)
    first, last = default_range(now)
    report = usage_report(
        store,
        product_code,
        by=by,
        start=first if start is None else start,
        end=last if end is None else end,
        group=DEFAULT_GROUP if group is None else group,
    )
    if not warnings:
        return report
    found = usage_warnings(store, now, product_code, start=report.start, end=report.end)
    return replace(report, warnings=tuple(found))


def _row_order(item: tuple[tuple[Any, ...], list[int]]) -> tuple[Any, ...]:
    """By period, then by each value of the group in turn (absent values first)."""
    key = item[0]
    return (key[0], [(v is not None, v or "") for v in key[1:]])


# -- warnings --------------------------------------------------------------------------------

WarningKind = Literal["billed-twice", "missed-hours", "late"]


@dataclass(frozen=True, slots=True)
class UsageWarning:
    kind: WarningKind
    customer_aws_account_id: str
    customer_identifier: str | None
    hour: datetime
    """The hour (billed twice), or the first of the hours missed."""
    hours: int
    dimension: str | None
    message: str

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "customer_aws_account_id": self.customer_aws_account_id,
            "customer_identifier": self.customer_identifier,
            "hour": iso_z(self.hour),
            "hours": self.hours,
            "dimension": self.dimension,
            "message": self.message,
        }


def usage_warnings(
    store: Reader,
    now: datetime,
    product_code: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[UsageWarning]:
    """What would go wrong on AWS, in [start, end) (default: this month until now), whole
    hours: a customer, dimension and hour metered both by customer and by LicenseArn (two
    slots on AWS: billed twice); closed hours in which a subscribed customer sent no record
    at all (a missed hourly report); records accepted under clock travel that AWS, on the
    real clock, would have refused (received after their hour's window closed). Reads the
    records of the range."""
    known_product(store, product_code)
    first, last = default_range(now)
    start, end = report_range(start or first, end or last, "hour")
    if start >= end:
        raise CatalogError("the check's start must be before its end")
    ways: dict[tuple[str, str, datetime], set[bool]] = {}
    metered: set[tuple[str, datetime]] = set()
    identifiers: dict[str, str | None] = {}
    late: list[UsageWarning] = []
    for r in find_records(store, RecordFilter(product_code, start=start, end=end)):
        if r.accepted_late:
            late.append(
                UsageWarning(
                    "late",
                    r.customer_aws_account_id,
                    r.customer_identifier,
                    r.hour,
                    1,
                    r.dimension,
                    f"{r.customer_aws_account_id}'s {r.operation} record for {r.dimension} "
                    f"at {iso_z(r.timestamp)} was accepted under clock travel (service clock "
                    f"{iso_z(r.received_at)}); on the real clock its window had closed: AWS "
                    "would have refused it",
                )
            )
        ways.setdefault((r.customer_aws_account_id, r.dimension, r.hour), set()).add(
            r.by_license_arn
        )
        metered.add((r.customer_aws_account_id, r.hour))
        identifiers[r.customer_aws_account_id] = r.customer_identifier
    found = [
        UsageWarning(
            "billed-twice",
            account,
            identifiers.get(account),
            hour,
            1,
            dimension,
            f"{account} was metered for {dimension} in the hour of {iso_z(hour)} both by "
            "customer and by LicenseArn: AWS bills both",
        )
        for (account, dimension, hour), sent in sorted(ways.items())
        if len(sent) == 2
    ]
    found += sorted(late, key=lambda w: (w.hour, w.customer_aws_account_id, w.dimension or ""))
    closed = period_start(now, "hour")
    for sub in store.product_subscriptions(product_code):
        first_hour = report_range(sub.created_at, sub.created_at, "hour")[1]
        until = min(end, closed, *(() if sub.ends_at is None else (sub.ends_at,)))
        hour = max(first_hour, start)
        run_start, run_length = None, 0
        while hour < until or run_start is not None:
            if hour < until and (sub.customer_aws_account_id, hour) not in metered:
                if run_start is None:
                    run_start = hour
                run_length += 1
            elif run_start is not None:
                found.append(
                    UsageWarning(
                        "missed-hours",
                        sub.customer_aws_account_id,
                        sub.customer_identifier or None,
                        run_start,
                        run_length,
                        None,
                        f"{sub.customer_aws_account_id} is subscribed and sent no record for "
                        f"{run_length} hour{'s' if run_length > 1 else ''} from "
                        f"{iso_z(run_start)}",
                    )
                )
                run_start, run_length = None, 0
            hour += timedelta(hours=1)
    return found


# -- invoice previews ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    dimension: str
    quantity: Decimal
    price_per_unit: Decimal | None
    """None: the catalog gives the dimension no price."""
    currency: str | None
    amount: Decimal | None
    """quantity × price_per_unit, exact (no rounding: AWS rounds on its own invoice)."""


@dataclass(frozen=True, slots=True)
class CustomerInvoice:
    customer_identifier: str | None
    customer_aws_account_id: str
    lines: tuple[InvoiceLine, ...]
    totals: dict[str, Decimal]
    """By currency."""


@dataclass(frozen=True, slots=True)
class InvoicePreview:
    product_code: str
    month: datetime
    customers: tuple[CustomerInvoice, ...]
    totals: dict[str, Decimal]

    def as_json(self) -> dict[str, Any]:
        def text(d: Decimal | None) -> str | None:
            return None if d is None else str(d)

        return {
            "product": self.product_code,
            "month": self.month.strftime("%Y-%m"),
            "customers": [
                {
                    "customer_identifier": c.customer_identifier,
                    "customer_aws_account_id": c.customer_aws_account_id,
                    "lines": [
                        {
                            "dimension": line.dimension,
                            "quantity": str(line.quantity),
                            "price_per_unit": text(line.price_per_unit),
                            "currency": line.currency,
                            "amount": text(line.amount),
                        }
                        for line in c.lines
                    ],
                    "totals": {k: str(v) for k, v in c.totals.items()},
                }
                for c in self.customers
            ],
            "totals": {k: str(v) for k, v in self.totals.items()},
        }


def parse_month(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise CatalogError(f"a month is YYYY-MM, as 2026-11, not {text!r}") from None


def invoice_preview(store: Reader, product_code: str, month: datetime) -> InvoicePreview:
    """Each customer's usage of the month priced by the catalog's `prices`: a preview of
    what AWS would invoice for the metered usage (no fees, taxes or contracts)."""
    product = known_product(store, product_code)
    month = period_start(month, "month")
    report = usage_report(
        store,
        product_code,
        by="month",
        start=month,
        end=next_period(month, "month"),
        group=DEFAULT_GROUP,
    )
    customers: dict[tuple[str | None, str], list[InvoiceLine]] = {}
    for row in report.rows:
        dimension = row.keys["dimension"] or ""
        price = product.prices.get(dimension)
        unit = None if price is None else Decimal(price.price_per_unit)
        line = InvoiceLine(
            dimension,
            row.quantity,
            unit,
            None if price is None else price.currency,
            None if unit is None else _product_of(row.quantity, unit),
        )
        key = (row.keys["customer_identifier"], row.keys["customer_aws_account_id"] or "")
        customers.setdefault(key, []).append(line)
    grand: dict[str, Decimal] = {}
    invoices = []
    for (identifier, account), lines in sorted(customers.items(), key=lambda i: i[0][1]):
        totals: dict[str, Decimal] = {}
        for line in lines:
            if line.amount is not None and line.currency is not None:
                totals[line.currency] = totals.get(line.currency, Decimal(0)) + line.amount
                grand[line.currency] = grand.get(line.currency, Decimal(0)) + line.amount
        invoices.append(CustomerInvoice(identifier, account, tuple(lines), totals))
    return InvoicePreview(product_code, month, tuple(invoices), grand)


def _product_of(quantity: Decimal, price: Decimal) -> Decimal:
    """quantity × price, exactly (enough digits for both), without trailing zeros."""
    with localcontext() as exact:
        exact.prec = 100
        text = f"{quantity * price:f}"
    return Decimal(text.rstrip("0").rstrip(".") if "." in text else text)
