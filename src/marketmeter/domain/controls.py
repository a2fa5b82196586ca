"""Test controls: what a seller's tests may make the marketplace do — move its clock, fail
calls as AWS can fail them. Kept in the database, so every process of a server started
with `--test-controls` follows them (within a second); a server without that flag never
reads them. This module holds their model and their checks; `protocol` and `app` apply
them.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import msgspec

from marketmeter.domain.errors import CatalogError, InternalServiceError, Throttled
from marketmeter.domain.models import OPERATIONS

if TYPE_CHECKING:  # the ports import this module's models
    from marketmeter.domain.ports import Store

_DURATION_PART = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


class Faults(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """How calls fail, until cleared. `operation` None: every operation."""

    operation: str | None = None
    throttle: bool = False
    throttle_rate: float = 0.0
    unprocessed_rate: float = 0.0
    latency_ms: int = 0

    def applies_to(self, operation: str) -> bool:
        return self.operation is None or self.operation == operation


class TestControls(msgspec.Struct, frozen=True, gc=False):
    clock_offset: timedelta = timedelta(0)
    faults: Faults | None = None
    internal_errors: int = 0
    """Calls still to be answered InternalServiceErrorException."""
    served_at: datetime | None = None
    """When a server obeying the controls last said so (a heartbeat)."""


def parse_duration(text: str) -> timedelta:
    """ "2h", "90m", "1d", "45s", "1h30m"; a leading "-" goes back."""
    sign = -1 if text.startswith("-") else 1
    body = text[1:] if sign < 0 else text
    parts = _DURATION_PART.findall(body)
    if not body or "".join(n + u for n, u in parts) != body:
        raise CatalogError(
            f"not a duration: {text!r} (use a number and d, h, m or s, e.g. 2h, 90m, 1d30m)"
        )
    try:
        total = sum((int(n) * _UNITS.get(u, timedelta(seconds=1)) for n, u in parts), timedelta(0))
    except OverflowError:
        raise CatalogError(f"not a duration this clock can move: {text!r}") from None
    return sign * total


MAX_LATENCY_MS = 600_000
MAX_INTERNAL_ERRORS = 1_000_000


def checked_internal_errors(count: int) -> int:
    if not 0 <= count <= MAX_INTERNAL_ERRORS:
        raise CatalogError(f"internal errors: 0 to {MAX_INTERNAL_ERRORS} calls, not {count}")
    return count


def checked_faults(
    operation: str | None,
    throttle: bool,
    throttle_rate: float,
    unprocessed_rate: float,
    latency_ms: int,
) -> Faults:
    if operation is not None and operation not in OPERATIONS:
        raise CatalogError(f"operation must be one of {', '.join(OPERATIONS)}, not {operation!r}")
    for name, rate in (("throttle rate", throttle_rate), ("unprocessed rate", unprocessed_rate)):
        if not 0.0 <= rate <= 1.0:
            raise CatalogError(f"the {name} is a fraction from 0 to 1, not {rate}")
    if not 0 <= latency_ms <= MAX_LATENCY_MS:
        raise CatalogError(f"latency is 0 to {MAX_LATENCY_MS} milliseconds, not {latency_ms}")
    return Faults(operation, throttle, throttle_rate, unprocessed_rate, latency_ms)


class ActiveControls:
    """The test controls one process obeys now: set by the process's follower from the
    database, consulted by every call. Only a server started with `--test-controls` has
    one."""

    def __init__(self) -> None:
        self.faults: Faults | None = None
        self.internal_errors = 0

    def follow(self, controls: TestControls) -> None:
        self.faults = controls.faults
        self.internal_errors = controls.internal_errors

    def check(self, operation: str, store: Store) -> None:
        """Fail the call as AWS can, if the controls say so (before anything is stored)."""
        faults = self.faults
        if faults is not None and faults.applies_to(operation):
            rate = faults.throttle_rate
            if faults.throttle or (rate > 0 and random.random() < rate):
                raise Throttled("Rate exceeded")
        if self.internal_errors > 0 and (faults is None or faults.applies_to(operation)):
            with store.transaction() as tx:
                taken = tx.take_internal_error()
            if taken:
                raise InternalServiceError()

    def unprocessed(self, operation: str, count: int) -> frozenset[int]:
        """Which of a batch's records to leave unprocessed."""
        faults = self.faults
        if faults is None or not faults.applies_to(operation) or faults.unprocessed_rate <= 0:
            return frozenset()
        rate = faults.unprocessed_rate
        return frozenset(i for i in range(count) if random.random() < rate)

    def latency(self, operation: str) -> float:
        faults = self.faults
        if faults is None or not faults.applies_to(operation):
            return 0.0
        return faults.latency_ms / 1000
