"""AWS's rules as the agent needs them, on the client side (the agent shares nothing with
the server): quantities in exact millionths, tags, the hour of use, how long each
operation accepts a record, and how long to wait before trying again."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

MICROS = 1_000_000
MAX_TAGS = 5
MAX_DISTINCT_KEYS = 5
MAX_ALLOCATIONS = 2500
MAX_KEY_LENGTH = 100
MAX_VALUE_LENGTH = 256
_TAG_CHARS = re.compile(r"[a-zA-Z0-9+ \-=._:/@]+")
BATCH_WINDOW = timedelta(hours=24)
METER_WINDOW = timedelta(hours=6)
MONTH_END_GRACE = timedelta(hours=6)
FIRST_RETRY = 1.0
LONGEST_WAIT = 300.0

Tags = tuple[tuple[str, str], ...]


def to_micros(quantity: int | Decimal | float) -> tuple[int, bool]:
    """The quantity in millionths, and whether it was given as a fraction-capable type
    (Decimal or float): summed exactly, sent as `QuantityAsDecimal` unless whole."""
    if isinstance(quantity, bool):
        raise ValueError("a quantity is a number, not a boolean")
    if isinstance(quantity, int):
        if quantity < 0:
            raise ValueError(f"a quantity cannot be negative: {quantity}")
        return quantity * MICROS, False
    if isinstance(quantity, float):
        quantity = Decimal(repr(quantity))
    if not isinstance(quantity, Decimal):
        raise ValueError(f"a quantity is an int, a Decimal or a float, not {quantity!r}")
    if not quantity.is_finite():
        raise ValueError(f"a quantity must be finite: {quantity}")
    if quantity < 0:
        raise ValueError(f"a quantity cannot be negative: {quantity}")
    try:
        micros = quantity * MICROS
        if micros != micros.to_integral_value():
            raise ValueError(f"a quantity has at most 6 decimal places: {quantity}")
    except InvalidOperation:
        raise ValueError(f"not a usable quantity: {quantity}") from None
    return int(micros), True


def decimal_text(micros: int) -> str:
    """Millionths as the exact decimal text AWS takes ("3.5", "12")."""
    whole, part = divmod(micros, MICROS)
    return f"{whole}" if not part else f"{whole}.{part:06d}".rstrip("0")


def checked_tags(tags: Mapping[str, str] | None) -> Tags:
    if not tags:
        return ()
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags on a record, not {len(tags)}")
    for key, value in tags.items():
        for what, text, longest in (
            ("key", key, MAX_KEY_LENGTH),
            ("value", value, MAX_VALUE_LENGTH),
        ):
            if not isinstance(text, str) or not text:
                raise ValueError(f"a tag {what} must be non-empty text: {text!r}")
            if len(text) > longest:
                raise ValueError(f"a tag {what} has at most {longest} characters: {text[:40]!r}…")
            if not _TAG_CHARS.fullmatch(text):
                raise ValueError(
                    f"a tag {what} may hold a-z A-Z 0-9, space and + - = . _ : / @ only: {text!r}"
                )
    return tuple(sorted(tags.items()))


def hour_of(at: datetime) -> int:
    """The hour of use, as epoch seconds of its start."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a time of use must carry its timezone (e.g. UTC), not {at!r}")
    seconds = int(at.timestamp())
    return seconds - seconds % 3600


def deadline(hour: int, mode: str) -> datetime:
    """Until when the service accepts a record stamped with this hour."""
    start = datetime.fromtimestamp(hour, UTC)
    if mode == "resource":
        return start + METER_WINDOW
    first = start.replace(day=1, hour=0)
    next_month = (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )
    return min(start + BATCH_WINDOW, next_month + MONTH_END_GRACE)


def backoff(attempts: int) -> float:
    """Seconds before the next try: exponential from 1 s, full jitter, at most 5 minutes."""
    ceiling = min(LONGEST_WAIT, FIRST_RETRY * 2 ** min(attempts, 20))
    return random.uniform(FIRST_RETRY, max(FIRST_RETRY, ceiling))
