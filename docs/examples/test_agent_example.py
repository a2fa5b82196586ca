"""The metering agent, from start to end (docs/agent.md): a SaaS product, and an AMI or
container product metered from its own instance or task."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from conftest import BUYER, SELLER, marketmeter
from marketmeter.agent import UsageMeter


def last_hour():
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def stored(database, product):
    lines = marketmeter("records", "export", "--product", product, database=database)
    return [json.loads(line) for line in lines.splitlines()]


def test_a_saas_product(metering_server, tmp_path):
    database, endpoint = metering_server
    product = "saas0000000000000000000001"
    marketmeter(
        "subscribe", "--product", product, "--customer-account", "777788889999",
        database=database,
    )  # fmt: skip
    outcomes = []
    meter = UsageMeter(
        product,
        tmp_path / "usage.db",  # the durable outbox: keep it on a persistent disk
        endpoint_url=endpoint,  # leave out to meter on AWS
        region_name="us-east-1",
        aws_access_key_id=SELLER[0],
        aws_secret_access_key=SELLER[1],
        dimensions=["users", "storage_gb"],
        on_outcome=outcomes.append,
    )
    hour = last_hour()  # usage of a closed hour: sent by flush() at once
    for minute in range(0, 60, 10):
        meter.record(
            customer_account="777788889999",
            dimension="users",
            quantity=2,
            tags={"team": "data"},
            at=hour + timedelta(minutes=minute),
        )
    meter.record(
        customer_account="777788889999",
        dimension="storage_gb",
        quantity=Decimal("10.25"),
        at=hour,
    )
    assert meter.flush() == 0  # nothing left pending
    meter.close()

    assert sorted((o.dimension, o.quantity, o.state) for o in outcomes) == [
        ("storage_gb", Decimal("10.25"), "sent"),
        ("users", Decimal("12"), "sent"),
    ]
    records = stored(database, product)
    assert sorted((r["Dimension"], r["QuantityAsDecimal"]) for r in records) == [
        ("storage_gb", "10.25"),
        ("users", "12"),
    ]
    [users] = [r for r in records if r["Dimension"] == "users"]
    assert users["UsageAllocations"] == [
        {"AllocatedUsageQuantity": 12, "Tags": [{"Key": "team", "Value": "data"}]}
    ]


def test_an_ami_or_container_product(metering_server, tmp_path):
    database, endpoint = metering_server
    product = "ami00000000000000000000001"
    meter = UsageMeter(
        product,
        tmp_path / "usage.db",
        mode="resource",  # one MeterUsage per dimension and hour, as the instance or task
        endpoint_url=endpoint,
        aws_access_key_id=BUYER[0],  # on AWS: the instance's or task's own role
        aws_secret_access_key=BUYER[1],
    )
    hour = last_hour()
    meter.record(dimension="vcpu_hours", quantity=Decimal("1.5"), at=hour)
    meter.record(dimension="vcpu_hours", quantity=Decimal("2.5"), at=hour + timedelta(minutes=30))
    assert meter.flush() == 0
    meter.close()
    [record] = stored(database, product)
    assert (record["Operation"], record["QuantityAsDecimal"]) == ("MeterUsage", "4")
