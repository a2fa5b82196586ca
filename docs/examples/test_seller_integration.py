"""A seller's integration test against marketmeter: a customer subscribes, the seller
resolves the registration token and meters usage, the customer unsubscribes, and the
test checks what the marketplace stored. Needs `pip install marketmeter boto3 pytest`."""

import json
import socket
import subprocess
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import boto3
import pytest

PRODUCT = "myproduct0000000000000001"
BUYER = "444455556666"
SELLER_KEY = ("AKIAEXAMPLESELLER001", "example-seller-secret-0000000000000001")
CATALOG = f"""
accounts:
  - account_id: "111122223333"
    access_keys:
      - {{access_key_id: {SELLER_KEY[0]}, secret_access_key: {SELLER_KEY[1]}}}
products:
  - product_code: {PRODUCT}
    seller_account_id: "111122223333"
    dimensions: [users]
"""


def marketmeter(*args: str, database: str) -> str:
    done = subprocess.run(
        ["marketmeter", *args, "--database", database],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture
def marketplace(tmp_path):
    """A marketmeter server on a free port, with the catalog, obeying test controls."""
    database = f"sqlite:///{tmp_path / 'marketplace.db'}"
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    marketmeter("catalog", "apply", str(tmp_path / "catalog.yaml"), database=database)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            "marketmeter",
            "serve",
            "--database",
            database,
            "--port",
            str(port),
            "--test-controls",
            "--log-level",
            "warning",
        ]
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint + "/health")
            break
        except OSError:
            time.sleep(0.1)
    yield database, endpoint
    server.terminate()
    server.wait()


def test_a_customer_is_metered_until_they_unsubscribe(marketplace):
    database, endpoint = marketplace
    seller = boto3.client(
        "meteringmarketplace",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=SELLER_KEY[0],
        aws_secret_access_key=SELLER_KEY[1],
    )
    # The buyer subscribes; AWS would POST the token to your fulfillment URL.
    token = marketmeter(
        "subscribe", "--product", PRODUCT, "--customer-account", BUYER, database=database
    ).splitlines()[-1]
    customer = seller.resolve_customer(RegistrationToken=token)
    assert customer["CustomerAWSAccountId"] == BUYER

    # Your code meters usage, stamped with the hour it happened in.
    now = datetime.now(UTC)
    record = {"Timestamp": now, "CustomerAWSAccountId": BUYER, "Dimension": "users", "Quantity": 3}
    out = seller.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=[record])
    assert out["Results"][0]["Status"] == "Success"

    # The buyer unsubscribes: one more hour of usage is accepted, then none.
    marketmeter("unsubscribe", "--product", PRODUCT, "--customer-account", BUYER, database=database)
    marketmeter("clock", "advance", "61m", database=database)  # obeyed from the next call
    late = dict(record, Timestamp=now + timedelta(minutes=60))
    out = seller.batch_meter_usage(ProductCode=PRODUCT, UsageRecords=[late])
    assert out["Results"][0]["Status"] == "CustomerNotSubscribed"

    # Read back exactly what was metered.
    stored = [
        json.loads(line)
        for line in marketmeter("records", "export", database=database).splitlines()
    ]
    assert [(r["CustomerAWSAccountId"], r["Dimension"], r["Quantity"]) for r in stored] == [
        (BUYER, "users", 3)
    ]
