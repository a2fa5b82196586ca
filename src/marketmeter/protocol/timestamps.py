"""Timestamps on the wire: read leniently, written as epoch-seconds numbers.

SDKs send integer seconds (botocore, the AWS CLI), fractional seconds (JavaScript, Java,
Go) and sometimes numeric strings; ISO 8601 strings are accepted too. Precision is kept to
the millisecond. Every timestamp marketmeter writes is a JSON number, as the model says.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from marketmeter.instants import from_ms, to_ms

_MIN = datetime(1, 1, 2, tzinfo=UTC)
_MAX = datetime(9999, 12, 30, tzinfo=UTC)
_MAX_TEXT = 64  # longer strings are no timestamp; and cost nothing to refuse
_LIMIT_SECONDS = 253_402_300_800  # 10000-01-01: anything beyond is clamped


class NotATimestamp(ValueError):
    pass


def parse_timestamp(value: object) -> datetime:
    """A JSON value as a UTC datetime, floored to the millisecond.

    Values beyond the years 1–9999 are clamped to the ends of that range: they are still
    refused later, by the time-window rules, with TimestampOutOfBoundsException.
    """
    if isinstance(value, bool):
        raise NotATimestamp("a boolean is not a timestamp")
    if isinstance(value, int):  # what botocore and the AWS CLI send: the fast path
        if -_LIMIT_SECONDS < value < _LIMIT_SECONDS:
            return from_ms(value * 1000)
        return _MIN if value < 0 else _MAX
    if isinstance(value, float):
        if 0 <= value < _LIMIT_SECONDS:
            # Whole milliseconds, as nearly every SDK sends them: the float nearest some
            # n / 1000 is that one's (in this range floats lie closer than 1 ms apart, so n
            # is the only such n, and its digits are the float's shortest decimal).
            millis = round(value * 1000)
            if millis / 1000 == value:
                return from_ms(millis)
        text = repr(value)  # the shortest decimal that reads back as this float
        if 0 <= value < _LIMIT_SECONDS and "e" not in text:
            # What the JavaScript, Java and Go SDKs send: the digits read as written —
            # whole seconds and the first three decimals (floored, as Decimal's path does).
            whole, _, fraction = text.partition(".")
            return from_ms(int(whole) * 1000 + int((fraction + "00")[:3]))
        return _from_seconds(Decimal(text))
    if isinstance(value, str):
        if len(value) > _MAX_TEXT:
            raise NotATimestamp("too long for a timestamp")
        text = value.strip()
        try:
            return _from_seconds(Decimal(text))
        except (InvalidOperation, ValueError):
            pass
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            parsed = parsed.astimezone(UTC)
        except ValueError:
            raise NotATimestamp("neither epoch seconds nor an ISO 8601 time") from None
        except OverflowError:  # a local time whose UTC instant is outside years 1–9999
            return _MIN if parsed.year < 5000 else _MAX
        return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)
    raise NotATimestamp("expected epoch seconds (a number) or an ISO 8601 string")


def _from_seconds(seconds: Decimal) -> datetime:
    if not seconds.is_finite():
        raise NotATimestamp("not a finite number")
    if abs(seconds) >= _LIMIT_SECONDS:  # compared before any arithmetic on a huge exponent
        return _MIN if seconds < 0 else _MAX
    millis = int((seconds * 1000).to_integral_value(rounding=ROUND_FLOOR))
    try:
        return from_ms(millis)
    except OverflowError:
        return _MIN if millis < 0 else _MAX


def to_epoch_seconds(ts: datetime) -> int | float:
    """The JSON number for a timestamp: whole seconds as an integer, else milliseconds."""
    millis = to_ms(ts)
    if millis % 1000 == 0:
        return millis // 1000
    return millis / 1000
