"""A seller's tests with marketmeter's in-process mock: no server, no endpoint_url — boto3
calls to AWS Marketplace are answered in-process, as moto answers the rest of AWS."""

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from marketmeter.testing import mock_marketplace

PRODUCT = "myproduct0000000000000001"
CATALOG = {
    "accounts": [{"account_id": "111122223333"}],
    "products": [
        {"product_code": PRODUCT, "seller_account_id": "111122223333", "dimensions": ["users"]}
    ],
}


def meter_last_hour(customer_account, users):
    """The seller's code under test: unchanged, no endpoint_url."""
    client = boto3.client("meteringmarketplace", region_name="us-east-1")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    result = client.batch_meter_usage(
        ProductCode=PRODUCT,
        UsageRecords=[
            {
                "Timestamp": hour,
                "CustomerAWSAccountId": customer_account,
                "Dimension": "users",
                "Quantity": users,
            }
        ],
    )
    return result["Results"][0]["Status"], hour


@mock_marketplace(catalog=CATALOG)
def test_metering_a_subscribed_customer(marketplace):
    token = marketplace.subscribe(PRODUCT, "444455556666")
    client = boto3.client("meteringmarketplace", region_name="us-east-1")
    customer = client.resolve_customer(RegistrationToken=token)
    assert customer["CustomerAWSAccountId"] == "444455556666"

    status, hour = meter_last_hour("444455556666", 12)

    assert status == "Success"
    marketplace.assert_metered(customer="444455556666", dimension="users", hour=hour, quantity=12)


def test_an_unsubscribed_customer_is_refused():
    with mock_marketplace(catalog=CATALOG) as marketplace:
        marketplace.subscribe(PRODUCT, "444455556666")
        marketplace.unsubscribe(PRODUCT, "444455556666")
        marketplace.clock.advance("61m")  # past the final hour
        status, _ = meter_last_hour("444455556666", 1)
        assert status == "CustomerNotSubscribed"
        assert marketplace.records() == []


def test_throttling_reaches_your_retries():
    with mock_marketplace(catalog=CATALOG) as marketplace:
        marketplace.subscribe(PRODUCT, "444455556666")
        marketplace.faults.set(throttle=True)  # every call, after boto3's own retries
        with pytest.raises(ClientError) as throttled:
            meter_last_hour("444455556666", 1)
        assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
        marketplace.faults.clear()
        assert meter_last_hour("444455556666", 1)[0] == "Success"
