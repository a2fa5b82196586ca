"""Reading what a page's query or a form sent: text trimmed, whole numbers clamped, times
as ISO 8601 in UTC — a bad value is a `CatalogError` naming the field, shown to the
person who sent it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from marketmeter.domain.errors import CatalogError
from marketmeter.instants import parse_utc


def text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional(values: Mapping[str, Any], name: str) -> str | None:
    return text(values, name) or None


def whole(value: str | None, default: int, low: int, high: int) -> int:
    """A whole number from a query parameter, within [low, high]; `default` if it is none."""
    if value is None or not value.strip().isdigit():
        return default
    return max(low, min(high, int(value)))


def time(values: Mapping[str, Any], name: str, label: str) -> datetime | None:
    """A time field (`datetime-local` inputs send `YYYY-MM-DDTHH:MM`: UTC here)."""
    value = text(values, name)
    if not value:
        return None
    try:
        return parse_utc(value)
    except ValueError:
        raise CatalogError(f"{label}: a time as YYYY-MM-DDTHH:MM (UTC), not {value!r}") from None


def number(values: Mapping[str, Any], name: str, label: str, default: float = 0.0) -> float:
    value = text(values, name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise CatalogError(f"{label}: a number, not {value!r}") from None


def count(values: Mapping[str, Any], name: str, label: str) -> int:
    value = text(values, name)
    if not value:
        return 0
    if not value.isdigit():
        raise CatalogError(f"{label}: a whole number, not {value!r}")
    return int(value)


def for_input(at: datetime | None) -> str:
    """A time as a `datetime-local` input shows it (UTC, to the minute)."""
    return "" if at is None else f"{at:%Y-%m-%dT%H:%M}"
