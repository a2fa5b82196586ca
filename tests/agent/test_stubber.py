"""The agent against botocore's Stubber: the calls it makes are exactly AWS's shapes (the
Stubber checks each against the model) with exactly the expected members — no server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import ANY, Stubber

from marketmeter.agent import Outcome, UsageMeter
from marketmeter.client import MarketplaceMetering

NOW = datetime(2026, 3, 15, 12, 30, tzinfo=UTC)
HOUR = datetime(2026, 3, 15, 11, tzinfo=UTC)


@pytest.fixture
def stubbed() -> Iterator[tuple[MarketplaceMetering, Stubber]]:
    session = botocore.session.get_session()
    keys = {"aws_access_key_id": "AKIAEXAMPLE000000001", "aws_secret_access_key": "x" * 40}
    metering = session.create_client("meteringmarketplace", region_name="us-east-1", **keys)
    entitlement = session.create_client("marketplace-entitlement", region_name="us-east-1", **keys)
    client = MarketplaceMetering(metering_client=metering, entitlement_client=entitlement)
    with Stubber(metering) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def meter(
    client: MarketplaceMetering, tmp_path: Path, outcomes: list[Outcome], **kw: Any
) -> UsageMeter:
    return UsageMeter(
        "prod1",
        tmp_path / "outbox.db",
        client=client,
        clock=lambda: NOW,
        on_outcome=outcomes.append,
        background=False,
        **kw,
    )


def test_a_closed_hour_goes_as_one_batch_stamped_with_its_hour(
    stubbed: tuple[MarketplaceMetering, Stubber], tmp_path: Path
) -> None:
    client, stub = stubbed
    outcomes: list[Outcome] = []
    agent = meter(client, tmp_path, outcomes)
    for minute in (5, 17, 59):
        agent.record("cust-a", "users", 2, at=HOUR + timedelta(minutes=minute))
    agent.record("cust-a", "storage", Decimal("1.5"), at=HOUR, tags={"team": "x"})
    agent.record("cust-a", "storage", Decimal("0.5"), at=HOUR)
    agent.record("cust-b", "users", 1, at=HOUR + timedelta(minutes=1))
    agent.record("cust-b", "users", 4, at=NOW)  # this hour: not closed, not sent
    expected = [
        {
            "Timestamp": HOUR,
            "Dimension": "storage",
            "CustomerIdentifier": "cust-a",
            "QuantityAsDecimal": "2",
            "UsageAllocations": [
                {"AllocatedUsageQuantityAsDecimal": "0.5"},
                {
                    "AllocatedUsageQuantityAsDecimal": "1.5",
                    "Tags": [{"Key": "team", "Value": "x"}],
                },
            ],
        },
        {"Timestamp": HOUR, "Dimension": "users", "CustomerIdentifier": "cust-a", "Quantity": 6},
        {"Timestamp": HOUR, "Dimension": "users", "CustomerIdentifier": "cust-b", "Quantity": 1},
    ]
    stub.add_response(
        "batch_meter_usage",
        {
            "Results": [
                {"UsageRecord": r, "MeteringRecordId": f"id-{i}", "Status": "Success"}
                for i, r in enumerate(expected)
            ],
            "UnprocessedRecords": [],
        },
        {"ProductCode": "prod1", "UsageRecords": expected},
    )
    assert agent.flush(timeout=5) == 0
    assert sorted((o.state, o.customer, o.dimension, o.quantity) for o in outcomes) == [
        ("sent", "cust-a", "storage", Decimal("2")),
        ("sent", "cust-a", "users", Decimal("6")),
        ("sent", "cust-b", "users", Decimal("1")),
    ]
    agent.close()


def test_statuses_are_read_and_unprocessed_records_sent_again(
    stubbed: tuple[MarketplaceMetering, Stubber], tmp_path: Path
) -> None:
    client, stub = stubbed
    outcomes: list[Outcome] = []
    agent = meter(client, tmp_path, outcomes)
    for customer in ("a", "b", "c", "d"):
        agent.record(customer, "users", 1, at=HOUR)
    record = {"Timestamp": HOUR, "Dimension": "users", "Quantity": 1}
    sent = [dict(record, CustomerIdentifier=c) for c in ("a", "b", "c", "d")]
    stub.add_response(
        "batch_meter_usage",
        {
            "Results": [
                {"UsageRecord": sent[0], "MeteringRecordId": "id-a", "Status": "Success"},
                {"UsageRecord": sent[1], "Status": "CustomerNotSubscribed"},
                {"UsageRecord": sent[2], "Status": "DuplicateRecord"},
            ],
            "UnprocessedRecords": [sent[3]],
        },
        {"ProductCode": "prod1", "UsageRecords": sent},
    )
    agent.sync()
    agent.send(settled=False)
    states = {o.customer: (o.state, o.reason) for o in outcomes}
    assert states["a"] == ("sent", None)
    assert states["b"] == ("failed", "CustomerNotSubscribed")
    assert states["c"][0] == "failed"
    assert "DuplicateRecord" in str(states["c"][1])
    assert "d" not in states  # to be sent again, after a wait
    agent.close()


def test_resource_mode_sends_one_meter_usage_per_dimension_hour_with_a_stable_token(
    stubbed: tuple[MarketplaceMetering, Stubber], tmp_path: Path
) -> None:
    client, stub = stubbed
    outcomes: list[Outcome] = []
    agent = meter(client, tmp_path, outcomes, mode="resource")
    agent.record(None, "vcpu_hours", Decimal("0.25"), at=HOUR, tags={"env": "prod"})
    agent.record(None, "vcpu_hours", Decimal("0.75"), at=HOUR, tags={"env": "dev"})
    stub.add_response(
        "meter_usage",
        {"MeteringRecordId": "id-1"},
        {
            "ProductCode": "prod1",
            "Timestamp": HOUR,
            "UsageDimension": "vcpu_hours",
            "UsageQuantityAsDecimal": "1",
            "UsageAllocations": [
                {
                    "AllocatedUsageQuantityAsDecimal": "0.75",
                    "Tags": [{"Key": "env", "Value": "dev"}],
                },
                {
                    "AllocatedUsageQuantityAsDecimal": "0.25",
                    "Tags": [{"Key": "env", "Value": "prod"}],
                },
            ],
            "ClientToken": ANY,
        },
    )
    assert agent.flush(timeout=5) == 0
    assert [(o.state, o.metering_record_id) for o in outcomes] == [("sent", "id-1")]
    agent.close()


def test_bad_input_is_refused_and_nothing_is_kept(
    stubbed: tuple[MarketplaceMetering, Stubber], tmp_path: Path
) -> None:
    client, _ = stubbed
    agent = meter(client, tmp_path, [], dimensions=["users"])
    bad: list[dict[str, Any]] = [
        {"customer": "a", "dimension": "colour"},
        {"customer": "a", "dimension": "users", "quantity": -1},
        {"customer": "a", "dimension": "users", "quantity": float("nan")},
        {"customer": "a", "dimension": "users", "at": datetime(2026, 3, 15, 11)},
        {"customer": "a", "dimension": "users", "tags": {f"k{i}": "v" for i in range(6)}},
        {"customer_account": "123", "dimension": "users"},
    ]
    for arguments in bad:
        with pytest.raises(ValueError):
            agent.record(**arguments)
    assert agent.sync() == 0
    agent.close()


def test_more_tag_keys_in_an_hour_than_one_record_allows_is_refused_at_record(
    stubbed: tuple[MarketplaceMetering, Stubber], tmp_path: Path
) -> None:
    client, _ = stubbed
    agent = meter(client, tmp_path, [])
    for i in range(5):  # five distinct keys in one hour of one customer: allowed
        agent.record("a", "users", 1, tags={f"k{i}": "v"}, at=HOUR)
    agent.record("a", "users", 1, tags={"k0": "w", "k4": "v"}, at=HOUR)  # known keys
    with pytest.raises(ValueError, match="at most 5 distinct tag keys"):
        agent.record("a", "users", 1, tags={"k5": "v"}, at=HOUR)
    agent.record("a", "users", 1, tags={"k5": "v"}, at=HOUR + timedelta(hours=1))  # next hour
    agent.record("b", "users", 1, tags={"k5": "v"}, at=HOUR)  # another customer
    assert agent.sync() == 8  # the refused call kept nothing
    agent.close()


def test_heartbeats_send_a_zero_for_an_idle_hour(
    stubbed: tuple[MarketplaceMetering, Stubber], tmp_path: Path
) -> None:
    client, stub = stubbed
    now = [HOUR + timedelta(minutes=10)]
    agent = UsageMeter(
        "prod1", tmp_path / "outbox.db", client=client, clock=lambda: now[0], background=False
    )
    agent.keep_alive("cust-a", ["users"])
    agent.sync()  # during the hour: a zero is kept for it
    now[0] = NOW
    stub.add_response(
        "batch_meter_usage",
        {"Results": [], "UnprocessedRecords": []},
        {
            "ProductCode": "prod1",
            "UsageRecords": [
                {
                    "Timestamp": HOUR,
                    "Dimension": "users",
                    "CustomerIdentifier": "cust-a",
                    "Quantity": 0,
                }
            ],
        },
    )
    agent.send(settled=False)
    agent.close()
