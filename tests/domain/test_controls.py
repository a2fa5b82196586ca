"""Test controls in the domain: durations, fault checks, and what a process obeys."""

from __future__ import annotations

from datetime import timedelta

import pytest

from marketmeter.domain.controls import ActiveControls, Faults, checked_faults, parse_duration
from marketmeter.domain.errors import CatalogError, InternalServiceError, Throttled
from marketmeter.domain.service import MeteringService
from marketmeter.store.sqlite import SqliteStore


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", timedelta(hours=2)),
        ("90m", timedelta(minutes=90)),
        ("1d", timedelta(days=1)),
        ("45s", timedelta(seconds=45)),
        ("1h30m", timedelta(minutes=90)),
        ("-1h", timedelta(hours=-1)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2", "h", "2x", "1h 30m", "soon", "--1h"])
def test_what_is_not_a_duration_is_refused(text: str) -> None:
    with pytest.raises(CatalogError, match="not a duration"):
        parse_duration(text)


def test_fault_settings_are_checked() -> None:
    with pytest.raises(CatalogError, match="fraction"):
        checked_faults(None, False, 2.0, 0.0, 0)
    with pytest.raises(CatalogError, match="operation"):
        checked_faults("Nope", False, 0.0, 0.0, 0)
    assert checked_faults("MeterUsage", True, 0.0, 0.0, 5) == Faults(
        "MeterUsage", True, 0.0, 0.0, 5
    )


def test_throttling_by_operation_and_by_rate(store: SqliteStore) -> None:
    active = ActiveControls()
    active.faults = Faults(operation="MeterUsage", throttle=True)
    with pytest.raises(Throttled):
        active.check("MeterUsage", store)
    active.check("BatchMeterUsage", store)  # another operation: untouched
    active.faults = Faults(throttle_rate=1.0)
    with pytest.raises(Throttled):
        active.check("ResolveCustomer", store)
    active.faults = Faults(throttle_rate=0.0)
    active.check("ResolveCustomer", store)


def test_internal_errors_are_counted_down_in_the_database(
    service: MeteringService, store: SqliteStore
) -> None:
    service.marketplace.set_faults(Faults(), internal_errors=2)
    active = ActiveControls()
    active.follow(store.test_controls())
    for _ in range(2):
        with pytest.raises(InternalServiceError):
            active.check("MeterUsage", store)
    active.check("MeterUsage", store)  # the database says none are left
    assert store.test_controls().internal_errors == 0


def test_unprocessed_records_and_latency_follow_the_faults() -> None:
    active = ActiveControls()
    assert active.unprocessed("BatchMeterUsage", 25) == frozenset()
    active.faults = Faults(unprocessed_rate=1.0, latency_ms=250)
    assert active.unprocessed("BatchMeterUsage", 25) == frozenset(range(25))
    assert active.latency("MeterUsage") == 0.25
    active.faults = Faults(operation="MeterUsage", unprocessed_rate=1.0)
    assert active.unprocessed("BatchMeterUsage", 25) == frozenset()
