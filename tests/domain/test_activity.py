"""The console's views of the domain: usage by hour and dimension narrowed to a customer,
a dimension or a tag (the usage report's numbers), records per minute, and the charts
drawn from them — on a real SQLite store."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from marketmeter.console.chart import activity_chart, usage_chart
from marketmeter.domain.activity import (
    UsageFocus,
    hourly_usage,
    parse_tag,
    recent_activity,
)
from marketmeter.domain.errors import CatalogError, NotFound
from marketmeter.domain.service import MeteringService
from tests.conftest import NOW
from tests.factories import BUYER, BUYER_IDENTIFIER, SAAS, alloc, caller, record

HOUR = NOW.replace(minute=0)


def send(service: MeteringService, *records) -> None:  # type: ignore[no-untyped-def]
    out = service.batch_meter_usage(caller("seller"), SAAS, list(records))
    assert [r.status for r in out.results] == ["Success"] * len(records)


@pytest.fixture
def metered(service: MeteringService) -> MeteringService:
    send(
        service,
        record(HOUR + timedelta(minutes=5), quantity=3, allocations=(alloc(3, team="a"),)),
        record(HOUR + timedelta(minutes=6), dimension="storage_gb", quantity="2.5"),
        record(HOUR - timedelta(hours=2), quantity=7, allocations=(alloc(7, team="b"),)),
    )
    return service


def test_usage_by_hour_and_dimension_is_the_report_s(metered: MeteringService) -> None:
    usage = hourly_usage(metered.store, NOW, SAAS)
    assert len(usage.hours) == 24 and usage.hours[-1] == HOUR
    assert usage.dimensions == ["users", "storage_gb"]  # the product's order
    assert usage.cells == {
        (HOUR, "users"): Decimal(3),
        (HOUR, "storage_gb"): Decimal("2.5"),
        (HOUR - timedelta(hours=2), "users"): Decimal(7),
    }
    report = metered.usage_report(
        SAAS, by="hour", group=["dimension"], start=usage.hours[0], end=HOUR + timedelta(hours=1)
    )
    assert usage.total == report.total == Decimal("12.5")
    assert usage.hour_records(HOUR) == 2 and usage.dimension_total("users") == 10


def test_the_focus_narrows_to_a_customer_a_dimension_or_a_tag(metered: MeteringService) -> None:
    def total(**focus: object) -> Decimal:
        return hourly_usage(metered.store, NOW, SAAS, focus=UsageFocus(**focus)).total  # type: ignore[arg-type]

    assert total(customer=BUYER) == total(customer=BUYER_IDENTIFIER) == Decimal("12.5")
    assert total(customer="000000000000") == 0
    assert total(dimension="storage_gb") == Decimal("2.5")
    assert total(tag=("team", "a")) == 3
    assert total(tag=("team", "b"), customer=BUYER) == 7
    assert total(tag=("team", "c")) == 0


def test_bad_ranges_tags_and_products_are_refused(metered: MeteringService) -> None:
    assert parse_tag("team=a=b") == ("team", "a=b")
    for text in ("team", "=a", "team="):
        with pytest.raises(CatalogError, match="KEY=VALUE"):
            parse_tag(text)
    with pytest.raises(CatalogError, match="at most 31 days"):
        hourly_usage(metered.store, NOW, SAAS, start=NOW - timedelta(days=40))
    with pytest.raises(NotFound):
        hourly_usage(metered.store, NOW, "nosuchproduct")


def test_records_per_minute_cover_the_last_hour(metered: MeteringService) -> None:
    activity = recent_activity(metered.store, NOW)
    assert len(activity.minutes) == 60
    assert activity.minutes[-1][0] == NOW  # the current minute is the last
    assert activity.total == 3 and activity.complete  # all received at NOW (a fixed clock)
    assert dict(activity.minutes)[NOW] == 3
    cut_short = recent_activity(metered.store, NOW, newest=2)
    assert cut_short.total == 2 and not cut_short.complete


def test_charts_stack_each_hour_s_dimensions_on_a_round_axis(metered: MeteringService) -> None:
    chart = usage_chart(hourly_usage(metered.store, NOW, SAAS))
    assert chart.legend == [(0, "users"), (1, "storage_gb")]
    assert [t for _, t in chart.y_ticks] == ["0", "2.5", "5", "7.5", "10"]  # 7 → a top of 10
    now_bar = [s for s in chart.segments if s.title.startswith(f"{HOUR:%Y-%m-%d %H:%M}Z")]
    users, storage = now_bar
    assert users.title.endswith("users: 3") and storage.title.endswith("storage_gb: 2.5")
    assert storage.y + storage.height == pytest.approx(users.y)  # stacked: storage on users
    assert users.y + users.height == pytest.approx(chart.bottom)  # on the axis
    plot = chart.bottom - 8  # (the chart's top margin)
    assert users.height == pytest.approx(plot * 3 / 10)  # 3 of an axis to 10
    assert len(chart.segments) == 3
    bars = activity_chart(recent_activity(metered.store, NOW))
    assert [s.title for s in bars.segments] == [f"{NOW:%Y-%m-%d %H:%M}Z · records: 3"]
