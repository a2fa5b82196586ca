"""Coming from moto: the tests of an app that uses S3 (or any AWS service) with moto's
`mock_aws` keep it, and add marketmeter's `mock_marketplace` for the Metering Service —
both decorators on the same test. S3 and DynamoDB calls go to moto, metering calls to
marketmeter (moto's own partial mock of the Metering Service never sees them); neither the
app nor its clients know.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from marketmeter.testing import mock_marketplace
from moto import mock_aws

from seller_app.metering_job import meter_hour
from seller_app.tables import create_tables
from seller_app.usage import record_usage

CATALOG = Path(__file__).with_name("catalog.yaml")
PRODUCT = "examplesaas00000000000001"
BUYER = "444455556666"
BUCKET = "example-seller-reports"


def meter_and_archive(marketplace: Any) -> None:
    """The hourly job as the seller runs it: meter, then archive the summary in S3."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
    create_tables(dynamodb)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    marketplace.subscribe(PRODUCT, BUYER)
    record_usage(BUYER, "api_calls", 12, hour + timedelta(minutes=20), dynamodb=dynamodb)

    summary = meter_hour(hour, PRODUCT, dynamodb=dynamodb)
    key = f"metering/{hour:%Y-%m-%dT%H}.json"
    report = {f"{c}/{d}": str(q) for (c, d), q in summary.metered.items()}
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(report).encode())

    archived = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())  # moto's
    assert archived == {f"{BUYER}/api_calls": "12"}
    [record] = marketplace.records(PRODUCT)  # marketmeter's
    assert (record.customer_aws_account_id, record.quantity) == (BUYER, Decimal(12))
    assert record.timestamp == hour


# Both orders of the decorators work: whichever starts first, moto's fake credentials are
# in the environment while the test runs, and the mock takes any credentials.


@mock_aws
@mock_marketplace(catalog=CATALOG)
def test_moto_outside_marketmeter_inside(marketplace: Any) -> None:
    meter_and_archive(marketplace)


@mock_marketplace(catalog=CATALOG)
@mock_aws
def test_marketmeter_outside_moto_inside(marketplace: Any) -> None:
    meter_and_archive(marketplace)
