"""Fixtures of the seller's tests: the marketplace catalog (for marketmeter's
`marketplace` and `marketmeter_server` fixtures) and DynamoDB, mocked by moto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from seller_app.tables import create_tables


@pytest.fixture(scope="session")
def marketmeter_catalog() -> Path:
    """The catalog marketmeter's fixtures start from (overrides the plugin's)."""
    return Path(__file__).with_name("catalog.yaml")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's DynamoDB with the app's tables; yields the DynamoDB resource.

    `mock_aws` is entered before any DynamoDB client is made (so that they get moto's
    fake credentials). It does not get in the way of the Metering Service: marketmeter's
    `marketplace` answers AWS-bound metering calls before moto sees them, and requests to
    another `endpoint_url` (a marketmeter server on 127.0.0.1) are never moto's — it only
    matches AWS's own hosts."""
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("CUSTOMERS_TABLE", raising=False)
    monkeypatch.delenv("USAGE_TABLE", raising=False)
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        create_tables(dynamodb)
        yield dynamodb
