"""The outbox's sending rules: when to try again, and when to give up."""

from __future__ import annotations

from datetime import timedelta

from marketmeter.domain.outbox import (
    LONGEST_WAIT,
    RETRY_FOR,
    Delivery,
    next_attempt,
    succeeded,
)
from tests.conftest import NOW


def delivery() -> Delivery:
    return Delivery("d1", "eventbridge", "t1", "p", "x", {}, NOW, NOW)


def test_waits_grow_with_the_attempts_and_never_exceed_ten_minutes() -> None:
    for attempted in range(1, 30):
        waits = [next_attempt(delivery(), attempted, NOW) for _ in range(50)]
        assert all(w is not None for w in waits)
        longest = max(w - NOW for w in waits if w is not None)
        assert timedelta(seconds=1) <= longest <= min(LONGEST_WAIT, timedelta(seconds=2**attempted))


def test_retries_stop_after_24_hours() -> None:
    assert next_attempt(delivery(), 40, NOW + RETRY_FOR) is None
    last = next_attempt(delivery(), 40, NOW + RETRY_FOR - timedelta(seconds=5))
    assert last is not None
    assert last <= NOW + RETRY_FOR


def test_any_2xx_ends_a_delivery() -> None:
    assert [s for s in (199, 200, 202, 204, 299, 300, 302, 404, 500) if succeeded(s)] == [
        200,
        202,
        204,
        299,
    ]
