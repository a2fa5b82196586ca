"""The agent's own copy of AWS's rules: quantities, tags, hours, windows, waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from marketmeter.agent.rules import (
    backoff,
    checked_tags,
    deadline,
    decimal_text,
    hour_of,
    to_micros,
)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        (3, (3_000_000, False)),
        (0, (0, False)),
        (Decimal("2.5"), (2_500_000, True)),
        (Decimal("0.000001"), (1, True)),
        (1.25, (1_250_000, True)),
    ],
)
def test_quantities_are_exact_millionths(quantity: object, expected: tuple[int, bool]) -> None:
    assert to_micros(quantity) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "quantity", [-1, Decimal("-0.5"), Decimal("NaN"), float("inf"), Decimal("0.0000001"), True, "3"]
)
def test_a_quantity_aws_would_refuse_is_a_value_error(quantity: object) -> None:
    with pytest.raises(ValueError, match="quantity"):
        to_micros(quantity)  # type: ignore[arg-type]


def test_decimal_text_is_exact() -> None:
    assert [decimal_text(m) for m in (0, 3_000_000, 2_500_000, 1, 10_000_001)] == [
        "0",
        "3",
        "2.5",
        "0.000001",
        "10.000001",
    ]


def test_tags_follow_aws_limits() -> None:
    assert checked_tags({"b": "2", "a": "1"}) == (("a", "1"), ("b", "2"))
    with pytest.raises(ValueError, match="at most 5"):
        checked_tags({f"k{i}": "v" for i in range(6)})
    with pytest.raises(ValueError, match="non-empty"):
        checked_tags({"k": ""})
    with pytest.raises(ValueError, match="may hold"):
        checked_tags({"team": "a&b"})
    with pytest.raises(ValueError, match="at most 100"):
        checked_tags({"k" * 101: "v"})


def test_the_hour_of_use_needs_a_timezone() -> None:
    at = datetime(2026, 3, 15, 12, 59, 59, tzinfo=UTC)
    assert hour_of(at) == int(datetime(2026, 3, 15, 12, tzinfo=UTC).timestamp())
    with pytest.raises(ValueError, match="timezone"):
        hour_of(at.replace(tzinfo=None))


def test_windows_of_each_operation_and_the_month_end_grace() -> None:
    mid_month = int(datetime(2026, 3, 15, 12, tzinfo=UTC).timestamp())
    assert deadline(mid_month, "batch") == datetime(2026, 3, 16, 12, tzinfo=UTC)
    assert deadline(mid_month, "resource") == datetime(2026, 3, 15, 18, tzinfo=UTC)
    month_end = int(datetime(2026, 3, 31, 20, tzinfo=UTC).timestamp())
    assert deadline(month_end, "batch") == datetime(2026, 4, 1, 6, tzinfo=UTC)


def test_waits_grow_and_stay_under_five_minutes() -> None:
    for attempts in range(1, 40):
        wait = backoff(attempts)
        assert 1.0 <= wait <= min(300.0, 2.0**attempts)
    assert timedelta(seconds=backoff(50)) <= timedelta(minutes=5)
