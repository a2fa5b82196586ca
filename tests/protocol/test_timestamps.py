import math
import random
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal

import pytest

from marketmeter.instants import from_ms
from marketmeter.protocol.timestamps import NotATimestamp, parse_timestamp, to_epoch_seconds

T = datetime(2026, 1, 1, 12, 30, 15, tzinfo=UTC)
EPOCH = 1767270615


@pytest.mark.parametrize(
    "value",
    [
        EPOCH,
        float(EPOCH),
        str(EPOCH),
        "1.767270615e9",
        "2026-01-01T12:30:15Z",
        "2026-01-01T13:30:15+01:00",
        "2026-01-01T12:30:15",
    ],
)
def test_every_accepted_form_reads_the_same_instant(value: object) -> None:
    assert parse_timestamp(value) == T


def test_fractional_seconds_keep_milliseconds() -> None:
    assert parse_timestamp(EPOCH + 0.123) == T.replace(microsecond=123000)
    assert parse_timestamp(f"{EPOCH}.1239") == T.replace(microsecond=123000)
    assert parse_timestamp("2026-01-01T12:30:15.987654Z") == T.replace(microsecond=987000)


def test_a_float_reads_as_its_written_digits_floored_to_the_millisecond() -> None:
    # The float fast path agrees with reading the float's shortest decimal exactly.
    rng = random.Random(15)
    floats = [rng.uniform(0, 4e9) for _ in range(20_000)]
    floats += [round(f, 3) for f in floats[:5000]] + [0.0, 0.0005, 1.9999, 5e-324, 253402300799.5]
    # Whole milliseconds up to the calendar's end (the whole-millisecond path), and their
    # neighbouring floats (which are not whole milliseconds).
    wide = [round(rng.uniform(0, 2.534e11), 3) for _ in range(5000)]
    floats += wide + [math.nextafter(f, math.inf) for f in wide]
    floats += [math.nextafter(f, 0.0) for f in wide] + [253402300799.999, 0.001, 0.999]
    for value in floats:
        millis = int((Decimal(repr(value)) * 1000).to_integral_value(rounding=ROUND_FLOOR))
        assert parse_timestamp(value) == from_ms(millis), value
    assert parse_timestamp(1767270615.9999) == T.replace(microsecond=999000)
    assert parse_timestamp(-0.5) == datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)


def test_values_outside_the_calendar_are_clamped_not_errors() -> None:
    assert parse_timestamp(1e20).year == 9999
    assert parse_timestamp(-1e20).year == 1


@pytest.mark.parametrize("value", [True, None, [], {}, "yesterday", "", "NaN", "Infinity"])
def test_other_values_are_not_timestamps(value: object) -> None:
    with pytest.raises(NotATimestamp):
        parse_timestamp(value)


def test_timestamps_are_written_as_numbers() -> None:
    assert to_epoch_seconds(T) == EPOCH
    assert isinstance(to_epoch_seconds(T), int)
    assert to_epoch_seconds(T.replace(microsecond=250000)) == EPOCH + 0.25
