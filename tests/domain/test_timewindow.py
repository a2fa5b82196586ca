import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from marketmeter.domain.errors import TimestampOutOfBounds
from marketmeter.domain.timewindow import (
    check_batch_window,
    check_batch_windows,
    check_meter_usage_window,
    floor_to_hour,
    start_of_next_month,
)

MS = timedelta(milliseconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_floor_to_hour_drops_minutes_seconds_and_milliseconds() -> None:
    assert floor_to_hour(utc(2026, 3, 15, 12, 59, 59, 999000)) == utc(2026, 3, 15, 12)
    assert floor_to_hour(utc(2026, 3, 15, 13, 0, 0)) == utc(2026, 3, 15, 13)


def test_start_of_next_month_wraps_the_year() -> None:
    assert start_of_next_month(utc(2026, 12, 31, 23, 59)) == utc(2027, 1, 1)
    assert start_of_next_month(utc(2026, 2, 28, 1)) == utc(2026, 3, 1)


class TestMeterUsageWindow:
    now = utc(2026, 3, 15, 12, 30)

    def test_just_under_six_hours_old_is_accepted(self) -> None:
        check_meter_usage_window(self.now - timedelta(hours=6) + MS, self.now)

    def test_exactly_six_hours_old_is_out_of_bounds(self) -> None:
        with pytest.raises(TimestampOutOfBounds, match="6 hours"):
            check_meter_usage_window(self.now - timedelta(hours=6), self.now)

    def test_five_minutes_ahead_is_accepted_one_millisecond_more_is_not(self) -> None:
        check_meter_usage_window(self.now + timedelta(minutes=5), self.now)
        with pytest.raises(TimestampOutOfBounds, match="5 minutes"):
            check_meter_usage_window(self.now + timedelta(minutes=5) + MS, self.now)

    def test_a_day_old_record_is_refused_by_meter_usage(self) -> None:
        with pytest.raises(TimestampOutOfBounds):
            check_meter_usage_window(self.now - timedelta(hours=23), self.now)


class TestBatchWindow:
    now = utc(2026, 3, 15, 12, 30)

    def test_23_hours_old_is_accepted(self) -> None:
        check_batch_window(self.now - timedelta(hours=23, minutes=59, seconds=59), self.now)

    def test_exactly_24_hours_old_is_out_of_bounds(self) -> None:
        with pytest.raises(TimestampOutOfBounds, match="24 hours"):
            check_batch_window(self.now - timedelta(hours=24), self.now)

    def test_future_limit_is_five_minutes(self) -> None:
        check_batch_window(self.now + timedelta(minutes=5), self.now)
        with pytest.raises(TimestampOutOfBounds):
            check_batch_window(self.now + timedelta(minutes=5, seconds=1), self.now)

    def test_previous_month_is_accepted_until_six_utc_on_the_first(self) -> None:
        march_31_late = utc(2026, 3, 31, 22, 15)
        check_batch_window(march_31_late, utc(2026, 4, 1, 5, 59, 59, 999000))

    def test_previous_month_is_refused_from_six_utc_even_inside_24_hours(self) -> None:
        march_31_late = utc(2026, 3, 31, 22, 15)
        with pytest.raises(TimestampOutOfBounds, match="March 2026"):
            check_batch_window(march_31_late, utc(2026, 4, 1, 6, 0))

    def test_grace_period_applies_across_the_year_end(self) -> None:
        check_batch_window(utc(2026, 12, 31, 23), utc(2027, 1, 1, 5))
        with pytest.raises(TimestampOutOfBounds):
            check_batch_window(utc(2026, 12, 31, 23), utc(2027, 1, 1, 6, 30))

    def test_same_month_records_are_unaffected_by_the_grace_period(self) -> None:
        check_batch_window(utc(2026, 4, 1, 0, 10), utc(2026, 4, 1, 23, 0))


def _refused(check: Callable[..., None], *args: object) -> bool:
    try:
        check(*args)
    except TimestampOutOfBounds:
        return True
    return False


def test_a_batch_s_timestamps_are_refused_exactly_when_one_of_them_is() -> None:
    # Two checks (the latest, the earliest) decide as one check per timestamp would: around
    # a month's and a year's end, with its grace period, and the future's bound.
    rng = random.Random(24)
    outcomes = set()
    for now in (utc(2026, 3, 15, 12), utc(2026, 4, 1, 3), utc(2026, 4, 1, 7), utc(2027, 1, 1, 5)):
        for _ in range(2000):
            timestamps = {
                now + timedelta(milliseconds=rng.randint(-26 * 3_600_000, 30 * 60_000))
                for _ in range(rng.randint(1, 5))
            }
            one_by_one = any(_refused(check_batch_window, ts, now) for ts in timestamps)
            assert _refused(check_batch_windows, timestamps, now) == one_by_one, timestamps
            outcomes.add(one_by_one)
    assert outcomes == {True, False}
    check_batch_windows(set(), utc(2026, 3, 15))  # (nothing to refuse)
