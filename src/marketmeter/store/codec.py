"""How domain values are kept in columns, shared by every SQL dialect.

Times are integer epoch milliseconds (UTC); lists are JSON text; allocations are kept in
their wire form, exactly as sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from marketmeter.domain.allocations import allocation_as_sent, allocation_from_sent
from marketmeter.domain.models import Allocation
from marketmeter.instants import from_ms, to_ms


def opt_to_ms(ts: datetime | None) -> int | None:
    return None if ts is None else to_ms(ts)


def opt_from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else from_ms(ms)


def dump_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def allocations_to_json(allocations: tuple[Allocation, ...] | None) -> str | None:
    if allocations is None:
        return None
    return dump_json([allocation_as_sent(a) for a in allocations])


def allocations_from_json(text: str | None) -> tuple[Allocation, ...] | None:
    if text is None:
        return None
    return tuple(allocation_from_sent(wire) for wire in orjson.loads(text))
