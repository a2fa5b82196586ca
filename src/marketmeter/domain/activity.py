"""What a seller looks at first, for the console: records received per minute lately, and a
product's usage by hour and dimension, narrowed to a customer, a dimension or a tag's
value — the usage report's numbers (`product_usage`), not a second count of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from marketmeter.domain.errors import CatalogError
from marketmeter.domain.ports import Reader
from marketmeter.domain.usage import UsageReport, UsageRow, period_start, product_usage

NEWEST_READ = 200_000
"""Records per minute are counted over at most this many of the newest records, so that
the overview stays quick however busy the last hour was (it says when it was cut short)."""

MAX_CHART_HOURS = 24 * 31
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Times a chart may show: no record is outside them, and hours around them stay valid."""
DEFAULT_CHART_HOURS = 24


@dataclass(frozen=True, slots=True)
class RecentActivity:
    minutes: list[tuple[datetime, int]]
    """Each minute of the last hour (oldest first), with the records received in it."""
    complete: bool
    """False: more than `NEWEST_READ` records arrived in the hour; only those were counted."""

    @property
    def total(self) -> int:
        return sum(n for _, n in self.minutes)


def recent_activity(store: Reader, now: datetime, *, newest: int = NEWEST_READ) -> RecentActivity:
    """Records received per minute in the hour up to `now` (the service clock's minutes:
    a record's received time is the service clock's)."""
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(hours=1)
    counts, complete = store.received_per_minute(start, end, newest)
    minutes = [start + timedelta(minutes=i) for i in range(60)]
    return RecentActivity([(m, counts.get(m, 0)) for m in minutes], complete)


@dataclass(frozen=True, slots=True)
class UsageFocus:
    """Which usage a chart shows: every field that is set must match."""

    customer: str | None = None
    """An AWS account ID or a CustomerIdentifier."""
    dimension: str | None = None
    tag: tuple[str, str] | None = None
    """(key, value): usage allocated to that tag value."""

    def admits(self, row: UsageRow) -> bool:
        keys = row.keys
        if self.customer is not None and self.customer not in (
            keys.get("customer_aws_account_id"),
            keys.get("customer_identifier"),
        ):
            return False
        if self.dimension is not None and keys.get("dimension") != self.dimension:
            return False
        return self.tag is None or keys.get(f"tag:{self.tag[0]}") == self.tag[1]


def parse_tag(text: str) -> tuple[str, str]:
    """`KEY=VALUE` (a tag's key and value, as a usage allocation carries them)."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise CatalogError(f"a tag as KEY=VALUE, not {text!r}")
    return key, value


@dataclass(frozen=True, slots=True)
class HourlyUsage:
    report: UsageReport
    """The usage report it was drawn from (by hour, grouped by dimension and whatever the
    focus needs), before narrowing."""
    focus: UsageFocus
    hours: list[datetime]
    dimensions: list[str]
    """Those with usage in the range (in the product's order, then any others)."""
    cells: dict[tuple[datetime, str], Decimal]
    records: dict[tuple[datetime, str], int]

    @property
    def total(self) -> Decimal:
        return sum(self.cells.values(), Decimal(0))

    def hour_records(self, hour: datetime) -> int:
        return sum(self.records.get((hour, d), 0) for d in self.dimensions)

    def dimension_total(self, dimension: str) -> Decimal:
        return sum((q for (_, d), q in self.cells.items() if d == dimension), Decimal(0))


def hourly_usage(
    store: Reader,
    now: datetime,
    product_code: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    focus: UsageFocus | None = None,
) -> HourlyUsage:
    """The product's usage per hour and dimension in [start, end) (default: the last 24
    hours up to the current one), narrowed to `focus`."""
    focus = focus or UsageFocus()
    if end is None:
        end = period_start(now, "hour") + timedelta(hours=1)
    for at in (start, end):
        if at is not None and not EARLIEST <= at <= LATEST:
            raise CatalogError(f"a chart's times lie between {EARLIEST:%Y} and {LATEST:%Y}")
    if start is None:
        start = end - timedelta(hours=DEFAULT_CHART_HOURS)
    if end - start > timedelta(hours=MAX_CHART_HOURS):
        raise CatalogError(f"a chart shows at most {MAX_CHART_HOURS // 24} days of hours")
    group = ["dimension"]
    if focus.customer is not None:
        group.append("customer")
    if focus.tag is not None:
        group.append(f"tag:{focus.tag[0]}")
    report = product_usage(store, now, product_code, by="hour", group=group, start=start, end=end)
    cells: dict[tuple[datetime, str], Decimal] = {}
    records: dict[tuple[datetime, str], int] = {}
    for row in report.rows:
        if not focus.admits(row):
            continue
        key = (row.period, str(row.keys["dimension"]))
        cells[key] = cells.get(key, Decimal(0)) + row.quantity
        records[key] = records.get(key, 0) + row.records
    hours = []
    at = report.start
    while at < report.end:
        hours.append(at)
        at += timedelta(hours=1)
    used = {d for _, d in cells}
    product = store.get_product(product_code)
    ordered = [d for d in (product.dimensions if product else ()) if d in used]
    dimensions = ordered + sorted(used - set(ordered))
    return HourlyUsage(report, focus, hours, dimensions, cells, records)
