"""Group commit, what both stores share: units of work queued by requests on a server's
event loop, run together in one transaction, and each request answered with its unit's
result or error once that transaction has committed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from marketmeter import metrics
from marketmeter.domain.ports import StoreConflict, StoreUnavailable, Transaction

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


def failed_group(exc: BaseException, size: int, database: str) -> list[Outcome]:
    """Every unit's outcome when its group's transaction failed: the store's own error, or
    any other as a retryable one (the client sends the request again)."""
    failure = (
        exc
        if isinstance(exc, StoreUnavailable | StoreConflict)
        else StoreUnavailable(f"{database}: {exc!r}")
    )
    kind = "conflict" if isinstance(failure, StoreConflict) else "unavailable"
    metrics.group_failed(database.lower(), kind)
    return [(failure, False)] * size
