"""The app against marketmeter's in-process marketplace (the `marketplace` fixture) and
moto's DynamoDB (the `aws` fixture).

Nothing is configured in the app: its boto3 clients have no `endpoint_url`, and their
calls to AWS's Metering Service are answered in-process by the mock, DynamoDB's by moto.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import boto3
import pytest
from botocore.config import Config

from seller_app.fulfillment import FulfillmentApp
from seller_app.metering_job import MeteringSummary, meter_hour
from seller_app.usage import record_usage

PRODUCT = "examplesaas00000000000001"
BUYER = "444455556666"
OTHER_BUYER = "777788889999"
STRANGER = "999900001111"


def previous_hour() -> datetime:
    """The hour of use of the tests: the last full hour (BatchMeterUsage takes records up
    to 24 hours old)."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def post_form(app: Any, form: dict[str, str], path: str = "/fulfillment") -> tuple[str, Any]:
    """POST a URL-encoded form to the WSGI app, as the buyer's browser does; the status,
    and the answer (`headers`, `body`). `wsgiref.validate` checks that the app keeps to
    WSGI."""
    body = urlencode(form).encode()
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
    )
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer.update(status=status, headers=dict(headers))
        return lambda data: None

    result = validator(app)(environ, start_response)
    try:
        answer["body"] = b"".join(result)
    finally:
        result.close()  # type: ignore[attr-defined]
    return answer["status"], answer


@pytest.fixture
def app(aws: Any) -> FulfillmentApp:
    return FulfillmentApp()


@pytest.fixture
def hour() -> datetime:
    return previous_hour()


def metering_without_retries() -> Any:
    """A client that does not retry (the SDK's backoff only makes a test slower)."""
    config = Config(retries={"total_max_attempts": 1})
    return boto3.client("meteringmarketplace", region_name="us-east-1", config=config)


def customers(aws: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = aws.Table("customers").scan()["Items"]
    return items


# -- fulfillment ---------------------------------------------------------------------------


def test_a_new_buyer_is_registered_and_sent_to_the_welcome_page(
    marketplace: Any, app: FulfillmentApp, aws: Any
) -> None:
    token = marketplace.subscribe(PRODUCT, BUYER)

    status, answer = post_form(app, {"x-amzn-marketplace-token": token})

    assert status == "302 Found"
    assert answer["headers"]["Location"] == f"/welcome?customer={BUYER}"
    subscription = marketplace.subscription(PRODUCT, BUYER)
    assert customers(aws) == [
        {
            "customer_aws_account_id": BUYER,
            "customer_identifier": subscription.customer_identifier,
            "product_code": PRODUCT,
            "license_arn": subscription.license_arn,
        }
    ]


def test_a_forged_token_is_refused(marketplace: Any, app: FulfillmentApp, aws: Any) -> None:
    status, answer = post_form(app, {"x-amzn-marketplace-token": "forged" * 20})

    assert status == "400 Bad Request"
    assert answer["body"] == b"Invalid or expired registration token\n"
    assert customers(aws) == []


def test_an_expired_token_is_refused(marketplace: Any, app: FulfillmentApp, aws: Any) -> None:
    marketplace.subscribe(PRODUCT, BUYER)
    token = marketplace.token(PRODUCT, BUYER, expires_in=timedelta(minutes=5))
    marketplace.clock.advance("6m")

    status, _ = post_form(app, {"x-amzn-marketplace-token": token})

    assert status == "400 Bad Request"
    assert customers(aws) == []


def test_a_post_without_a_token_is_refused(app: FulfillmentApp) -> None:
    status, _ = post_form(app, {"something": "else"})

    assert status == "400 Bad Request"


def test_a_failure_of_aws_is_a_500(marketplace: Any, aws: Any) -> None:
    app = FulfillmentApp(metering_factory=metering_without_retries)
    token = marketplace.subscribe(PRODUCT, BUYER)
    marketplace.faults.set(operation="ResolveCustomer", throttle=True)

    status, _ = post_form(app, {"x-amzn-marketplace-token": token})

    assert status == "500 Internal Server Error"


# -- metering ------------------------------------------------------------------------------


def test_an_hour_of_usage_is_metered(marketplace: Any, aws: Any, hour: datetime) -> None:
    marketplace.subscribe(PRODUCT, BUYER)
    marketplace.subscribe(PRODUCT, OTHER_BUYER)
    record_usage(BUYER, "api_calls", 2, hour + timedelta(minutes=5))
    record_usage(BUYER, "api_calls", 3, hour + timedelta(minutes=59, seconds=59))
    record_usage(OTHER_BUYER, "api_calls", 7, hour + timedelta(minutes=10))
    record_usage(BUYER, "storage_gb", "1.25", hour + timedelta(minutes=30))
    record_usage(BUYER, "api_calls", 100, hour + timedelta(hours=1))  # the next hour's

    summary = meter_hour(hour, PRODUCT)

    assert summary == MeteringSummary(
        metered={
            (BUYER, "api_calls"): Decimal(5),
            (BUYER, "storage_gb"): Decimal("1.25"),
            (OTHER_BUYER, "api_calls"): Decimal(7),
        },
        failed=[],
    )
    marketplace.assert_metered(customer=BUYER, dimension="api_calls", hour=hour, quantity=5)
    marketplace.assert_metered(customer=BUYER, dimension="storage_gb", hour=hour, quantity="1.25")
    marketplace.assert_metered(customer=OTHER_BUYER, dimension="api_calls", hour=hour, quantity=7)
    records = marketplace.records(PRODUCT)
    assert len(records) == 3
    assert {r.timestamp for r in records} == {hour}
    assert marketplace.usage(PRODUCT, start=hour).total == Decimal("13.25")


def test_a_buyer_who_never_subscribed_is_reported(
    marketplace: Any, aws: Any, hour: datetime
) -> None:
    marketplace.subscribe(PRODUCT, BUYER)
    record_usage(BUYER, "api_calls", 1, hour)
    record_usage(STRANGER, "api_calls", 4, hour)

    summary = meter_hour(hour, PRODUCT)

    assert summary.metered == {(BUYER, "api_calls"): Decimal(1)}
    assert summary.failed == [(STRANGER, "api_calls", "CustomerNotSubscribed")]
    assert marketplace.records(PRODUCT, customer=STRANGER) == []


def test_unprocessed_records_are_sent_again(marketplace: Any, aws: Any, hour: datetime) -> None:
    marketplace.subscribe(PRODUCT, BUYER)
    marketplace.subscribe(PRODUCT, OTHER_BUYER)
    record_usage(BUYER, "api_calls", 2, hour)
    record_usage(BUYER, "storage_gb", 3, hour)
    record_usage(OTHER_BUYER, "api_calls", 4, hour)
    marketplace.faults.set(unprocessed_rate=0.5)

    # Each record is left unprocessed at random, half the time: with 30 attempts the job
    # gets everything through but once in a billion runs.
    summary = meter_hour(hour, PRODUCT, attempts=30, retry_sleep=0)

    assert summary.failed == []
    assert len(marketplace.records(PRODUCT)) == 3  # each stored once
    assert marketplace.usage(PRODUCT, start=hour).total == 9
    marketplace.assert_metered(customer=BUYER, dimension="storage_gb", hour=hour, quantity=3)


def test_metering_the_same_hour_again_charges_nothing_twice(
    marketplace: Any, aws: Any, hour: datetime
) -> None:
    marketplace.subscribe(PRODUCT, BUYER)
    record_usage(BUYER, "api_calls", 6, hour + timedelta(minutes=1))
    first = meter_hour(hour, PRODUCT)
    records = marketplace.records(PRODUCT)

    again = meter_hour(hour, PRODUCT)  # a rerun after a crash: the same records

    assert again == first == MeteringSummary({(BUYER, "api_calls"): Decimal(6)}, [])
    assert marketplace.records(PRODUCT) == records


def test_late_usage_of_a_metered_hour_is_a_duplicate(
    marketplace: Any, aws: Any, hour: datetime
) -> None:
    marketplace.subscribe(PRODUCT, BUYER)
    record_usage(BUYER, "api_calls", 6, hour)
    meter_hour(hour, PRODUCT)
    record_usage(BUYER, "api_calls", 1, hour + timedelta(minutes=30))  # arrived late

    summary = meter_hour(hour, PRODUCT)

    assert summary.failed == [(BUYER, "api_calls", "DuplicateRecord")]
    marketplace.assert_metered(customer=BUYER, dimension="api_calls", hour=hour, quantity=6)


def test_usage_is_sent_in_batches_of_25(marketplace: Any, aws: Any, hour: datetime) -> None:
    buyers = [f"{400000000000 + n}" for n in range(27)]
    for buyer in buyers:
        marketplace.subscribe(PRODUCT, buyer)
        record_usage(buyer, "api_calls", 1, hour)
    metering = boto3.client("meteringmarketplace", region_name="us-east-1")
    batches: list[int] = []
    metering.meta.events.register(
        "before-parameter-build.marketplace-metering.BatchMeterUsage",
        lambda params, **_: batches.append(len(params["UsageRecords"])),
    )

    summary = meter_hour(hour, PRODUCT, metering=metering)

    assert batches == [25, 2]
    assert len(summary.metered) == 27
    assert len(marketplace.records(PRODUCT)) == 27
