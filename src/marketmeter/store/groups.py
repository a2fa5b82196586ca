"""Group commit, what both stores share: units of work queued by requests on a server's
event loop, run together in one transaction, and each request answered with its unit's
result or error once that transaction has committed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from marketmeter.domain.ports import Transaction

Unit = Callable[[Transaction], Any]
Queued = tuple[Unit, "asyncio.Future[Any]"]
Outcome = tuple[Any, bool]
"""A unit's result and True, or its error and False."""


def answer(futures: list[asyncio.Future[Any]], outcomes: list[Outcome]) -> None:
    """On the event loop: each waiting request gets its unit's result or error."""
    for future, (value, ok) in zip(futures, outcomes, strict=True):
        if future.done():  # the request went away meanwhile
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
