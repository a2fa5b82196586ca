"""Exact usage quantities: integers and decimal strings, compared by value.

A quantity arrives either as an integer member (`Quantity`, `UsageQuantity`,
`AllocatedUsageQuantity`) or as a decimal string (`*AsDecimal`: up to 10 integer digits
and 6 decimal places). Both are held as an integer number of millionths (`micros`) —
exact, cheap to compare and to add, never a float: 17, 17.0 and "17.00" are the same
quantity.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

MICROS_PER_UNIT = 1_000_000
DECIMAL_PLACES = 6


class Quantity(msgspec.Struct, frozen=True, gc=False):
    micros: int
    """The value in millionths: the exact comparison and summing key."""
    as_decimal: bool
    """True when sent in an `*AsDecimal` member, False for the integer members."""
    text: str
    """The quantity as sent: the decimal string, or the integer in decimal digits."""

    @classmethod
    def from_integer(cls, n: int) -> Quantity:
        return cls(n * MICROS_PER_UNIT, False, str(n))

    @classmethod
    def from_decimal_string(cls, s: str) -> Quantity:
        """`s` as the model's pattern admits it: digits, optionally `.` and 1–6 digits."""
        whole, dot, fraction = s.partition(".")
        if not _digits(whole) or (dot and not _digits(fraction)):
            raise ValueError(f"not a decimal quantity: {s!r}")
        if len(fraction) > DECIMAL_PLACES:
            raise ValueError(f"more than {DECIMAL_PLACES} decimal places: {s!r}")
        micros = int(whole) * MICROS_PER_UNIT + int(fraction.ljust(DECIMAL_PLACES, "0"))
        return cls(micros, True, s)

    @property
    def value(self) -> Decimal:
        return Decimal(self.micros).scaleb(-DECIMAL_PLACES)

    @property
    def whole(self) -> int:
        """The integer value (for quantities sent as integers)."""
        return self.micros // MICROS_PER_UNIT

    def same_value(self, other: Quantity) -> bool:
        return self.micros == other.micros


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


ZERO = Quantity.from_integer(0)


def format_micros(micros: int) -> str:
    """The shortest exact decimal text: 17000000 → "17", 17500000 → "17.5"."""
    whole, fraction = divmod(micros, MICROS_PER_UNIT)
    if not fraction:
        return str(whole)
    return f"{whole}.{fraction:06d}".rstrip("0")
