"""The app over real HTTP, against a real marketmeter server (the `marketmeter_server`
fixture): the marketplace POSTs the registration token to the app's fulfillment URL as
the buyer's browser does, and the app calls the server with a client configured as it
would be for any Metering Service endpoint.

DynamoDB stays moto's (the `aws` fixture): moto only intercepts requests to AWS's own
hosts, so the metering client given `endpoint_url=<the server>` goes over HTTP to
marketmeter while the app's DynamoDB calls — from the serving thread too — go to moto.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from seller_app.fulfillment import FulfillmentApp, serve
from seller_app.metering_job import meter_hour
from seller_app.usage import record_usage

PRODUCT = "examplesaas00000000000001"
FULFILLED_PRODUCT = "examplefulfil000000000001"
SELLER = "111122223333"
BUYER = "444455556666"


@pytest.fixture
def metering(marketmeter_server: Any) -> Any:
    """The seller's metering client, pointed at the server, signing with the seller's key
    of the catalog."""
    return boto3.client(
        "meteringmarketplace",
        endpoint_url=marketmeter_server.endpoint_url,
        region_name="us-east-1",
        **marketmeter_server.credentials(),
    )


@pytest.fixture
def fulfillment_url(aws: Any, metering: Any, marketmeter_server: Any) -> Iterator[str]:
    """The app, served on a free port, and a product of the marketplace that sends its
    buyers there (gone with the server's reset before the next test)."""
    server = serve(0, FulfillmentApp(metering_factory=lambda: metering))
    url = f"http://127.0.0.1:{server.server_port}/fulfillment"
    try:
        marketmeter_server.handle.catalog.apply(
            {
                "products": [
                    {
                        "product_code": FULFILLED_PRODUCT,
                        "seller_account_id": SELLER,  # in the catalog already
                        "type": "saas",
                        "dimensions": ["api_calls"],
                        "fulfillment_url": url,
                    }
                ]
            }
        )
        yield url
    finally:
        server.shutdown()
        server.server_close()


def test_the_marketplace_posts_the_token_to_the_fulfillment_url(
    marketmeter_server: Any, fulfillment_url: str, aws: Any
) -> None:
    marketplace = marketmeter_server.handle

    marketplace.subscribe(FULFILLED_PRODUCT, BUYER)

    answer = marketplace.fulfillment_answers[-1]
    assert (answer.status, answer.location) == (302, f"/welcome?customer={BUYER}")
    item = aws.Table("customers").get_item(Key={"customer_aws_account_id": BUYER})["Item"]
    subscription = marketplace.subscription(FULFILLED_PRODUCT, BUYER)
    assert item["customer_identifier"] == subscription.customer_identifier
    assert item["product_code"] == FULFILLED_PRODUCT


def test_usage_metered_over_http_is_stored_by_the_server(
    marketmeter_server: Any, metering: Any, aws: Any
) -> None:
    marketplace = marketmeter_server.handle
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    marketplace.subscribe(PRODUCT, BUYER)
    record_usage(BUYER, "api_calls", 40, hour + timedelta(minutes=15))
    record_usage(BUYER, "api_calls", 2, hour + timedelta(minutes=45))

    summary = meter_hour(hour, PRODUCT, metering=metering)

    assert summary.metered == {(BUYER, "api_calls"): Decimal(42)}
    [record] = marketplace.records(PRODUCT, customer=BUYER, hour=hour)
    assert (record.dimension, record.quantity, record.timestamp) == ("api_calls", 42, hour)
    assert record.operation == "BatchMeterUsage"
    marketplace.assert_metered(customer=BUYER, dimension="api_calls", hour=hour, quantity=42)
