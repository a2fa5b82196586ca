"""The in-process mock, used as a seller uses it: boto3 clients with no endpoint_url, the
handle, the decorator and the context manager, threads, and what it leaves alone."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from marketmeter.catalog_source import CatalogFileError
from marketmeter.testing import MockHandle, NotActive, mock_marketplace

CATALOG = Path(__file__).with_name("catalog.yaml")
SAAS = "kitsaas000000000000000001"
AMI = "kitami0000000000000000001"
CONTRACT = "kitcontract00000000000001"
BUYER = "444455556666"
SELLER_KEY = ("AKIAKITSELLER0000001", "kit-seller-secret-000000000000000000001")
NO_RETRIES = Config(retries={"total_max_attempts": 1})


def metering(**keys: Any) -> Any:
    return boto3.client("meteringmarketplace", region_name="us-east-1", config=NO_RETRIES, **keys)


def last_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def batch(client: Any, account: str, quantity: int, dimension: str = "users") -> dict[str, Any]:
    out: dict[str, Any] = client.batch_meter_usage(
        ProductCode=SAAS,
        UsageRecords=[
            {
                "Timestamp": last_hour(),
                "CustomerAWSAccountId": account,
                "Dimension": dimension,
                "Quantity": quantity,
            }
        ],
    )
    return out


@pytest.fixture
def mock() -> Iterator[MockHandle]:
    with mock_marketplace(CATALOG) as handle:
        yield handle


def test_boto3_without_endpoint_url_reaches_the_mock(mock: MockHandle) -> None:
    token = mock.subscribe(SAAS, BUYER)
    client = metering()
    assert client.meta.endpoint_url == "https://metering.marketplace.us-east-1.amazonaws.com"
    customer = client.resolve_customer(RegistrationToken=token)
    subscription = mock.subscription(SAAS, BUYER)
    assert customer["CustomerIdentifier"] == subscription.customer_identifier
    assert customer["CustomerAWSAccountId"] == BUYER
    assert customer["Metadata"]["AgreementId"] == subscription.agreement_id
    out = batch(client, BUYER, 7)
    assert out["Results"][0]["Status"] == "Success"
    [record] = mock.records(SAAS)
    assert (record.customer_aws_account_id, record.dimension, record.quantity) == (
        BUYER,
        "users",
        Decimal(7),
    )
    assert record.record_id == out["Results"][0]["MeteringRecordId"]
    assert record.timestamp == last_hour()
    assert record.operation == "BatchMeterUsage"


def test_aws_errors_come_as_aws_sends_them(mock: MockHandle) -> None:
    client = metering()
    with pytest.raises(ClientError) as refused:
        client.resolve_customer(RegistrationToken="not-a-token")
    assert refused.value.response["Error"]["Code"] == "InvalidTokenException"
    out = batch(client, "999988887777", 1)  # never subscribed
    assert out["Results"][0]["Status"] == "CustomerNotSubscribed"
    with pytest.raises(ClientError) as other:
        client.batch_meter_usage(ProductCode=AMI, UsageRecords=[])  # not a SaaS product
    assert other.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert mock.records() == []


def test_a_client_made_before_the_mock_is_served_by_it() -> None:
    # Made before any mock is active (the plugin registered the hook). With keys of its
    # own: boto3's default session finds the mock's fake ones only while a mock is active
    # (or still holds them from an earlier test in this process — an order this test must
    # not depend on).
    client = metering(aws_access_key_id="AKIAMADEBEFORE000001", aws_secret_access_key="before")
    with mock_marketplace(CATALOG) as handle:
        handle.subscribe(SAAS, BUYER)
        assert batch(client, BUYER, 2)["Results"][0]["Status"] == "Success"
        assert len(handle.records(SAAS)) == 1


def test_each_activation_starts_from_the_catalog_alone() -> None:
    with mock_marketplace(CATALOG) as first:
        first.subscribe(SAAS, BUYER)
        batch(metering(), BUYER, 3)
        first.clock.advance("2h")
        assert len(first.records()) == 1
    with mock_marketplace(CATALOG) as second:
        assert second.records() == []
        assert abs(second.clock.now() - datetime.now(UTC)) < timedelta(seconds=5)
        assert batch(metering(), BUYER, 3)["Results"][0]["Status"] == "CustomerNotSubscribed"


@mock_marketplace(CATALOG)
def test_as_a_decorator_with_the_handle(marketplace: MockHandle, tmp_path: Path) -> None:
    assert tmp_path.is_dir()  # other fixtures still come from pytest
    marketplace.subscribe(SAAS, BUYER)
    assert batch(metering(), BUYER, 1)["Results"][0]["Status"] == "Success"


@mock_marketplace(CATALOG)
def test_as_a_decorator_without_the_handle() -> None:
    out = batch(metering(), BUYER, 1)
    assert out["Results"][0]["Status"] == "CustomerNotSubscribed"  # answered by the mock


def test_the_handle_outside_its_mock_is_a_clear_error() -> None:
    with mock_marketplace(CATALOG) as handle:
        pass
    with pytest.raises(NotActive, match="not active"):
        handle.records()
    with pytest.raises(NotActive):
        handle.subscribe(SAAS, BUYER)


def test_calls_from_many_threads(mock: MockHandle) -> None:
    accounts = [f"7000000000{i:02d}" for i in range(8)]
    for account in accounts:
        mock.subscribe(SAAS, account)
    client = metering()
    errors: list[BaseException] = []

    def work(account: str) -> None:
        try:
            for dimension in ("users", "storage_gb"):
                for _ in range(3):  # the same record again: one stored, the same id
                    batch(client, account, 5, dimension)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(a,)) for a in accounts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    records = mock.records(SAAS)
    assert len(records) == 16
    assert {(r.customer_aws_account_id, r.dimension) for r in records} == {
        (a, d) for a in accounts for d in ("users", "storage_gb")
    }
    assert mock.usage(SAAS).total == Decimal(80)


def test_a_client_with_another_endpoint_url_is_left_alone(mock: MockHandle) -> None:
    client = boto3.client(
        "meteringmarketplace",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",  # nothing listens there
        config=NO_RETRIES,
    )
    with pytest.raises(EndpointConnectionError):
        batch(client, BUYER, 1)
    assert mock.records() == []


def test_other_services_are_left_alone(mock: MockHandle) -> None:
    sts = boto3.client(
        "sts", region_name="us-east-1", endpoint_url="http://127.0.0.1:9", config=NO_RETRIES
    )
    with pytest.raises(EndpointConnectionError):
        sts.get_caller_identity()


def test_any_credentials_act_as_the_seller_and_catalog_keys_are_verified(
    mock: MockHandle,
) -> None:
    assert mock.account == "111122223333"  # the catalog's one seller
    mock.subscribe(SAAS, BUYER)
    anyone = metering(aws_access_key_id="FOOBARKEY", aws_secret_access_key="FOOBARSECRET")
    assert batch(anyone, BUYER, 1)["Results"][0]["Status"] == "Success"
    wrong = metering(aws_access_key_id=SELLER_KEY[0], aws_secret_access_key="not-the-secret")
    with pytest.raises(ClientError) as refused:
        batch(wrong, BUYER, 1)
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_catalog_credentials_only() -> None:
    with mock_marketplace(CATALOG, credentials="catalog") as handle:
        handle.subscribe(SAAS, BUYER)
        anyone = metering(aws_access_key_id="AKIANOTINTHECATALOG1", aws_secret_access_key="x")
        with pytest.raises(ClientError) as refused:
            batch(anyone, BUYER, 1)
        assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
        seller = metering(aws_access_key_id=SELLER_KEY[0], aws_secret_access_key=SELLER_KEY[1])
        assert batch(seller, BUYER, 1)["Results"][0]["Status"] == "Success"


def test_a_buyer_meters_an_ami_product_acting_as_its_account(mock: MockHandle) -> None:
    client = metering()
    with mock.acting_as("999988887777"), pytest.raises(ClientError) as not_a_buyer:
        client.meter_usage(
            ProductCode=AMI, Timestamp=last_hour(), UsageDimension="vcpu_hours", UsageQuantity=1
        )
    assert not_a_buyer.value.response["Error"]["Code"] == "CustomerNotEntitledException"
    with mock.acting_as(BUYER):
        client.meter_usage(
            ProductCode=AMI, Timestamp=last_hour(), UsageDimension="vcpu_hours", UsageQuantity=4
        )
    assert mock.account == "111122223333"
    mock.assert_metered(customer=BUYER, dimension="vcpu_hours", hour=last_hour(), quantity=4)
    [record] = mock.records(AMI)
    assert record.operation == "MeterUsage"


def test_the_clock_moves_the_unsubscribe_hour(mock: MockHandle) -> None:
    mock.subscribe(SAAS, BUYER)
    mock.unsubscribe(SAAS, BUYER)
    client = metering()
    now = mock.clock.now()
    record = {"Timestamp": now, "CustomerAWSAccountId": BUYER, "Dimension": "users"}
    inside = client.batch_meter_usage(ProductCode=SAAS, UsageRecords=[{**record, "Quantity": 1}])
    assert inside["Results"][0]["Status"] == "Success"  # the final hour
    after = mock.clock.advance("61m")
    assert after - now >= timedelta(minutes=61)
    late = {**record, "Timestamp": after, "Quantity": 2}
    out = client.batch_meter_usage(ProductCode=SAAS, UsageRecords=[late])
    assert out["Results"][0]["Status"] == "CustomerNotSubscribed"
    assert mock.subscription(SAAS, BUYER).state(mock.clock.now()) == "unsubscribed"


def test_faults_reach_boto3(mock: MockHandle) -> None:
    mock.subscribe(SAAS, BUYER)
    client = metering()
    mock.faults.set(throttle=True)
    with pytest.raises(ClientError) as throttled:
        batch(client, BUYER, 1)
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    mock.faults.set(unprocessed_rate=1.0)
    out = batch(client, BUYER, 1)
    assert out["Results"] == [] and len(out["UnprocessedRecords"]) == 1
    mock.faults.set(internal_errors=1)
    with pytest.raises(ClientError) as failed:
        batch(client, BUYER, 1)
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    mock.faults.clear()
    assert batch(client, BUYER, 1)["Results"][0]["Status"] == "Success"
    assert len(mock.records()) == 1


def test_entitlements_reach_get_entitlements(mock: MockHandle) -> None:
    mock.add_event_target("http://127.0.0.1:9/events", product=CONTRACT)
    mock.subscribe(CONTRACT, BUYER)
    mock.entitlement(CONTRACT, BUYER, "seats", 25)
    client = boto3.client("marketplace-entitlement", region_name="us-east-1")
    assert client.meta.endpoint_url == "https://entitlement.marketplace.us-east-1.amazonaws.com"
    [entitlement] = client.get_entitlements(ProductCode=CONTRACT)["Entitlements"]
    assert (entitlement["Dimension"], entitlement["Value"]) == ("seats", {"IntegerValue": 25})
    mock.remove_entitlement(CONTRACT, BUYER, "seats")
    assert client.get_entitlements(ProductCode=CONTRACT)["Entitlements"] == []
    names = [d.delivery.name for d in mock.deliveries(CONTRACT)]
    assert names.count("Purchase Agreement Amended - Proposer") == 2  # kept, not sent


def test_usage_report_groups_and_tags(mock: MockHandle) -> None:
    for account in (BUYER, "777788889999"):
        mock.subscribe(SAAS, account)
    hour = last_hour()
    metering().batch_meter_usage(
        ProductCode=SAAS,
        UsageRecords=[
            {
                "Timestamp": hour,
                "CustomerAWSAccountId": BUYER,
                "Dimension": "users",
                "QuantityAsDecimal": "2.5",
                "UsageAllocations": [
                    {
                        "AllocatedUsageQuantityAsDecimal": "2",
                        "Tags": [{"Key": "team", "Value": "a"}],
                    },
                    {"AllocatedUsageQuantityAsDecimal": "0.5"},
                ],
            },
            {
                "Timestamp": hour,
                "CustomerAWSAccountId": "777788889999",
                "Dimension": "users",
                "Quantity": 4,
            },
        ],
    )
    by_customer = mock.usage(SAAS).as_json()
    assert by_customer["total"] == "6.5"
    rows = {r["customer_aws_account_id"]: r["quantity"] for r in by_customer["rows"]}
    assert rows == {BUYER: "2.5", "777788889999": "4"}
    by_tag = mock.usage(SAAS, by="day", group=["tag:team"]).as_json()
    assert [(r["tag:team"], r["quantity"], r["records"]) for r in by_tag["rows"]] == [
        (None, "4.5", 2),
        ("a", "2", 1),
    ]
    assert by_tag["rows"][0]["period"] == hour.strftime("%Y-%m-%dT00:00:00Z")


def test_assert_metered_says_what_was_metered(mock: MockHandle) -> None:
    mock.subscribe(SAAS, BUYER)
    batch(metering(), BUYER, 3)
    batch(metering(), BUYER, 9, "storage_gb")
    hour = last_hour()
    mock.assert_metered(
        customer=BUYER, dimension="users", hour=hour + timedelta(minutes=5), quantity=3
    )
    customer = mock.subscription(SAAS, BUYER).customer_identifier
    mock.assert_metered(customer=customer, dimension="storage_gb", hour=hour)  # any quantity
    with pytest.raises(AssertionError) as wrong:
        mock.assert_metered(customer=BUYER, dimension="users", hour=hour, quantity=4)
    message = str(wrong.value)
    assert "expected 4 'users'" in message and "found 3" in message
    assert "users = 3" in message and "storage_gb = 9" in message
    with pytest.raises(AssertionError) as elsewhere:
        mock.assert_metered(customer=BUYER, dimension="users", hour=hour - timedelta(hours=3))
    assert "Nothing was metered" in str(elsewhere.value)
    assert hour.strftime("%Y-%m-%dT%H:%MZ") in str(elsewhere.value)


def test_a_catalog_mistake_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text(
        "accounts:\n"
        '  - account_id: "111122223333"\n'
        "products:\n"
        "  - product_code: p1\n"
        '    seller_account_id: "111122223333"\n'
        "    type: nope\n"
        "    dimensions: [a]\n"
    )
    with pytest.raises(CatalogFileError) as wrong:
        mock_marketplace(bad).start()
    assert f"{bad}:6: products[0].type: one of saas, ami, container, not 'nope'" in str(wrong.value)
    with pytest.raises(CatalogFileError, match="cannot read the catalog"):
        mock_marketplace(tmp_path / "missing.yaml").start()


def test_catalog_as_a_mapping_and_applied_later() -> None:
    seller = {"account_id": "210987654321"}
    product = {"product_code": "mapped", "seller_account_id": "210987654321", "dimensions": ["x"]}
    with mock_marketplace({"accounts": [seller], "products": [product]}) as handle:
        assert handle.account == "210987654321"
        handle.catalog.apply(
            {"accounts": [seller], "products": [{**product, "product_code": "later"}]}
        )
        handle.subscribe("later", BUYER)
        out = metering().batch_meter_usage(
            ProductCode="later",
            UsageRecords=[
                {
                    "Timestamp": last_hour(),
                    "CustomerAWSAccountId": BUYER,
                    "Dimension": "x",
                    "Quantity": 1,
                }
            ],
        )
        assert out["Results"][0]["Status"] == "Success"


def test_a_process_that_never_stops_its_mock_leaves_no_temporary_files(tmp_path: Path) -> None:
    # The mock's database and the catalog's template database (kept for the process's
    # life) are removed when the process exits, stopped or not; so is the directory of a
    # server of the kit that made its own.
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    program = (
        "import sys\n"
        "from marketmeter.testing import mock_marketplace\n"
        "from marketmeter.testing.server import MarketmeterServer\n"
        "mock = mock_marketplace(sys.argv[1])\n"
        "mock.start()\n"
        "server = MarketmeterServer(sys.argv[1]).start()\n"
        "server.stop()\n"
        "import pathlib, tempfile\n"
        "made = list(pathlib.Path(tempfile.gettempdir()).glob('marketmeter-*'))\n"
        "print(len(made))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", program, str(CATALOG)],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(temporary)},
        timeout=60,
        check=True,
    )
    assert int(ran.stdout) == 3, ran.stdout  # the mock's, the template's, the server's
    assert list(temporary.iterdir()) == []
