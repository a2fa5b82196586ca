"""Exact usage quantities: integers and decimal strings, compared by value.

A quantity arrives either as an integer member (`Quantity`, `UsageQuantity`,
`AllocatedUsageQuantity`) or as a decimal string (`*AsDecimal`, up to 10 integer digits and
6 decimal places). Both are held as `Decimal`, never as floats; 17, 17.0 and "17.00" are the
same quantity (`micros` is the comparison key).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

MICROS_PER_UNIT = 1_000_000


@dataclass(frozen=True, slots=True)
class Quantity:
    value: Decimal
    as_decimal: bool
    """True when sent in an `*AsDecimal` member, False for the integer members."""
    text: str
    """The quantity as sent: the decimal string, or the integer in decimal digits."""

    @classmethod
    def from_integer(cls, n: int) -> Quantity:
        return cls(Decimal(n), False, str(n))

    @classmethod
    def from_decimal_string(cls, s: str) -> Quantity:
        return cls(Decimal(s), True, s)

    @property
    def micros(self) -> int:
        """The value in millionths: the exact comparison and summing key."""
        return int(self.value * MICROS_PER_UNIT)

    def same_value(self, other: Quantity) -> bool:
        return self.micros == other.micros


ZERO = Quantity.from_integer(0)


def format_decimal(value: Decimal) -> str:
    """The shortest exact decimal text: 17 → "17", 17.50 → "17.5"."""
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")
