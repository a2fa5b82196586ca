"""Hour flooring and the accepted time windows of the two metering operations.

- MeterUsage: a timestamp less than 6 hours old.
- BatchMeterUsage: less than 24 hours old; a record of a previous calendar month (UTC) only
  until 06:00 UTC on the 1st of the next month (the billing-cycle grace period).
- Both: at most 5 minutes in the future.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from marketmeter.domain.errors import TimestampOutOfBounds
from marketmeter.instants import iso

METER_USAGE_WINDOW = timedelta(hours=6)
BATCH_METER_USAGE_WINDOW = timedelta(hours=24)
FUTURE_TOLERANCE = timedelta(minutes=5)
MONTH_END_GRACE = timedelta(hours=6)


def floor_to_hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def start_of_next_month(ts: datetime) -> datetime:
    first = ts.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if first.month == 12:
        return first.replace(year=first.year + 1, month=1)
    return first.replace(month=first.month + 1)


def check_meter_usage_window(ts: datetime, now: datetime) -> None:
    _check_future(ts, now)
    _check_meter_usage_age(ts, now)


def _check_meter_usage_age(ts: datetime, now: datetime) -> None:
    if now - ts >= METER_USAGE_WINDOW:
        raise TimestampOutOfBounds(
            f"The timestamp value passed in the UsageRecord is out of allowed range: "
            f"{iso(ts)} is 6 hours or more before the current time {iso(now)}."
        )


def check_batch_window(ts: datetime, now: datetime) -> None:
    _check_future(ts, now)
    _check_batch_age(ts, now)


def check_batch_windows(timestamps: Collection[datetime], now: datetime) -> None:
    """`check_batch_window` for every one of `timestamps`, in two checks: each bound is
    monotone (a later timestamp is never older, and its month's grace ends no sooner), so
    the latest decides the future's, the earliest the age's and the month's."""
    if timestamps:
        _check_future(max(timestamps), now)
        _check_batch_age(min(timestamps), now)


def _check_batch_age(ts: datetime, now: datetime) -> None:
    if now - ts >= BATCH_METER_USAGE_WINDOW:
        raise TimestampOutOfBounds(
            f"The timestamp value passed in the UsageRecord is out of allowed range: "
            f"{iso(ts)} is 24 hours or more before the current time {iso(now)}."
        )
    if ts.month == now.month and ts.year == now.year:
        return  # the grace period only concerns records of a previous month
    grace_end = start_of_next_month(ts) + MONTH_END_GRACE
    if now >= grace_end:
        raise TimestampOutOfBounds(
            f"The timestamp value passed in the UsageRecord is out of allowed range: "
            f"records for {ts:%B %Y} were accepted until {iso(grace_end)}."
        )


def outside_window(ts: datetime, now: datetime, operation: str) -> bool:
    """Whether `ts` is too old at `now` for the operation's window — its age, and for
    BatchMeterUsage the month's end (a record accepted under clock travel that AWS, on the
    real clock, would have refused as late). A timestamp ahead of `now` is not late."""
    try:
        if operation == "MeterUsage":
            _check_meter_usage_age(ts, now)
        else:
            _check_batch_age(ts, now)
    except TimestampOutOfBounds:
        return True
    return False


def _check_future(ts: datetime, now: datetime) -> None:
    if ts - now > FUTURE_TOLERANCE:
        raise TimestampOutOfBounds(
            f"The timestamp value passed in the UsageRecord is out of allowed range: "
            f"{iso(ts)} is more than 5 minutes after the current time {iso(now)}."
        )
