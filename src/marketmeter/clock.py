"""The service clock: a protocol, the system clock and a fixed clock for tests.

The domain never calls `datetime.now()` itself; it asks the clock it was given. SigV4's
clock-skew check is the one exception: clients sign with real time, so the protocol layer
checks skew against the real clock, never against this one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until it is moved: exact hour and window tests."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._at += delta


class OffsetClock:
    """Another clock moved by an offset: the service clock under test controls (`clock set`,
    `clock advance`), which every process of a server follows."""

    def __init__(self, base: Clock, offset: timedelta = timedelta(0)) -> None:
        self._base = base
        self.offset = offset

    def now(self) -> datetime:
        return self._base.now() + self.offset

    def base_now(self) -> datetime:
        """The time of the clock it moves: the real time, for the service clock."""
        return self._base.now()


def untravelled(clock: Clock) -> datetime | None:
    """The real time while `clock` travels (an OffsetClock with an offset), else None."""
    if isinstance(clock, OffsetClock) and clock.offset:
        return clock.base_now()
    return None
