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
    """The field, trimmed, without NUL characters (no stored name holds one, and
    PostgreSQL's text cannot)."""
    value = values.get(name)
    return value.replace("\x00", "").strip() if isinstance(value, str) else ""


def optional(values: Mapping[str, Any], name: str) -> str | None:
    return text(values, name) or None


def _digits(value: str) -> int | None:
    """A whole number in ASCII digits (at most 18 of them), or None."""
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def whole(value: str | None, default: int, low: int, high: int) -> int:
    """A whole number from a query parameter, within [low, high]; `default` if it is none."""
    found = None if value is None else _digits(value.strip())
    return default if found is None else max(low, min(high, found))


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
    found = _digits(value)
    if found is None:
        raise CatalogError(f"{label}: a whole number, not {value!r}")
    return found


def for_input(at: datetime | None) -> str:
    """A time as a `datetime-local` input shows it (UTC, to the minute)."""
    return "" if at is None else f"{at:%Y-%m-%dT%H:%M}"
