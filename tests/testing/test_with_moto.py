"""The mock beside moto's `mock_aws`, stacked either way: moto keeps every other service
(S3 here), marketmeter answers the two Marketplace services, and moto's fake credentials
are accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
from moto import mock_aws

from marketmeter.testing import MockHandle, mock_marketplace

CATALOG = Path(__file__).with_name("catalog.yaml")
SAAS = "kitsaas000000000000000001"


def exercise(marketplace: MockHandle) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="usage-exports")
    s3.put_object(Bucket="usage-exports", Key="hour.json", Body=b"{}")
    marketplace.subscribe(SAAS, "444455556666")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    metering = boto3.client("meteringmarketplace", region_name="us-east-1")
    out = metering.batch_meter_usage(
        ProductCode=SAAS,
        UsageRecords=[
            {
                "Timestamp": hour,
                "CustomerAWSAccountId": "444455556666",  # moto knows no such member
                "Dimension": "users",
                "Quantity": 2,
            }
        ],
    )
    assert out["Results"][0]["Status"] == "Success"
    assert s3.get_object(Bucket="usage-exports", Key="hour.json")["Body"].read() == b"{}"
    marketplace.assert_metered(customer="444455556666", dimension="users", hour=hour, quantity=2)


@mock_aws
@mock_marketplace(CATALOG)
def test_moto_outside(marketplace: MockHandle) -> None:
    exercise(marketplace)


@mock_marketplace(CATALOG)
@mock_aws
def test_moto_inside(marketplace: MockHandle) -> None:
    exercise(marketplace)


def test_after_the_mock_moto_answers_metering_again() -> None:
    with mock_aws():
        with mock_marketplace(CATALOG):
            pass
        metering = boto3.client("meteringmarketplace", region_name="us-east-1")
        out = metering.batch_meter_usage(
            ProductCode="anything",
            UsageRecords=[
                {
                    "Timestamp": datetime.now(UTC),
                    "CustomerIdentifier": "c",
                    "Dimension": "d",
                    "Quantity": 1,
                }
            ],
        )
        # moto's answer (it knows no customers); marketmeter would refuse the product.
        assert out["Results"][0]["Status"] == "CustomerNotSubscribed"
