"""Helpers for tests that fire many requests at once or write under load."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError


@dataclass(frozen=True)
class Outcome:
    ok: bool
    value: Any = None
    """The reply (ok) or the error code."""
    status: int | None = None


def race(clients: Sequence[Any], call: Callable[[Any, int], Any]) -> list[Outcome]:
    """Run `call(client, i)` for every client at the same moment (a barrier releases all)."""
    barrier = threading.Barrier(len(clients))
    outcomes: list[Outcome | None] = [None] * len(clients)

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = Outcome(True, call(clients[i], i))
        except ClientError as exc:
            outcomes[i] = Outcome(
                False,
                exc.response["Error"]["Code"],
                exc.response["ResponseMetadata"]["HTTPStatusCode"],
            )

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(o is not None for o in outcomes), "a racing request did not finish"
    return [o for o in outcomes if o is not None]
