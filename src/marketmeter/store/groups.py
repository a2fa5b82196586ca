"""Group commit, what both stores share: units of work queued by requests on a server's
event loop, run together in one transaction, and each request answered with its unit's
result or error once that transaction has committed."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from marketmeter import metrics
from marketmeter.domain.ports import StoreConflict, StoreUnavailable, Transaction

log = logging.getLogger("marketmeter.store")

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


class BackgroundFolds:
    """The usage log's folds after a group's commit, on a thread of their own, one at a
    time: a fold moves thousands of rows, and the groups that come meanwhile need not wait
    for it. A fold due while another runs is left to the next; one that fails is logged
    and retried by a later one (its rows stay in the log)."""

    def __init__(self, fold: Callable[[], None], thread_name: str) -> None:
        self._fold = fold
        self._threads = ThreadPoolExecutor(1, thread_name_prefix=thread_name)
        self._busy = threading.Lock()

    @property
    def running(self) -> bool:
        return self._busy.locked()

    def soon(self) -> None:
        if not self._busy.acquire(blocking=False):
            return
        try:  # (after the group's commit: nothing here may turn its answers into errors)
            self._threads.submit(self._run)
        except RuntimeError:  # closing: a later fold moves these rows
            self._busy.release()

    def _run(self) -> None:
        try:
            self._fold()
        except Exception as exc:
            log.warning("folding the usage log failed (a later fold retries): %r", exc)
        finally:
            self._busy.release()

    def close(self) -> None:
        """Wait for a fold under way; accept no more."""
        self._threads.shutdown(wait=True)
