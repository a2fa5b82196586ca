"""The fast path may only ever be stricter than the model-driven validator: whatever msgspec
accepts, `validation` must accept too (it stays the authority for everything else)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketmeter.protocol.fastpath import compile_fast_decoder
from marketmeter.protocol.operations import compile_operations
from marketmeter.protocol.validation import RequestNotReadable, compile_input

OPERATIONS = ("BatchMeterUsage", "MeterUsage", "ResolveCustomer", "RegisterUsage")
FAST = {op: compile_fast_decoder(op) for op in OPERATIONS}
WIRE = {w.name: w for w in compile_operations().values()}
SLOW = {op: compile_input(op) for op in OPERATIONS}

VALID: dict[str, dict[str, Any]] = {
    "BatchMeterUsage": {
        "ProductCode": "prod-1",
        "UsageRecords": [
            {
                "Timestamp": 1767270615,
                "CustomerAWSAccountId": "444455556666",
                "Dimension": "users",
                "QuantityAsDecimal": "1.5",
                "UsageAllocations": [
                    {"AllocatedUsageQuantityAsDecimal": "1.5", "Tags": [{"Key": "k", "Value": "v"}]}
                ],
            }
        ],
    },
    "MeterUsage": {
        "ProductCode": "prod-1",
        "Timestamp": 1767270615.25,
        "UsageDimension": "gb",
        "UsageQuantity": 3,
        "DryRun": False,
        "ClientToken": "token",
    },
    "ResolveCustomer": {"RegistrationToken": "abc"},
    "RegisterUsage": {"ProductCode": "prod-1", "PublicKeyVersion": 1, "Nonce": "n"},
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["", "0", "1.5", "01", "1.1234567", "123\n", "a\u0000b", "2026-01-01T00:00:00Z", "x" * 300]
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += paths(v, (*prefix, i))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(copy[path[0]], path[1:], new)
    return copy


def slow_accepts(op: str, payload: Any) -> bool:
    if not isinstance(payload, dict):
        return False
    out: list[str] = []
    try:
        SLOW[op](payload, None, out)
    except RequestNotReadable:
        return False
    return not out


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(op=st.sampled_from(OPERATIONS), data=st.data(), new=json_values)
def test_what_the_fast_path_accepts_the_validator_accepts(
    op: str, data: st.DataObject, new: Any
) -> None:
    base = VALID[op]
    path = data.draw(st.sampled_from(paths(base)))
    payload = replaced(base, path, new)
    try:
        body = orjson.dumps(payload)
    except TypeError:
        return  # not JSON
    try:
        request, checked = WIRE[op]._decode(body)  # what the endpoint does
    except RequestNotReadable:
        return
    if checked:
        assert slow_accepts(op, request), (op, payload)


def test_the_valid_requests_take_the_fast_path() -> None:
    for op, payload in VALID.items():
        FAST[op].decode(orjson.dumps(payload))
        assert slow_accepts(op, payload)


def test_a_nul_character_always_takes_the_slow_path() -> None:
    body = orjson.dumps({"RegistrationToken": "a\u0000b"})
    FAST["ResolveCustomer"].decode(body)  # msgspec alone would let it through
    _, checked = WIRE["ResolveCustomer"]._decode(body)
    assert not checked
