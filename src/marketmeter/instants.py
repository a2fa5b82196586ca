"""Instants as marketmeter keeps and writes them: integer epoch milliseconds (UTC), and
ISO 8601 with milliseconds and a `Z`. Exact integer arithmetic, no float rounding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(ts: datetime) -> int:
    delta = ts - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """An ISO 8601 time (`Z` allowed); without a zone, UTC. ValueError naming the text."""
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except (ValueError, OverflowError):  # (a time of year 1 east of UTC has no UTC)
        raise ValueError(f"not an ISO 8601 time: {text!r}") from None
