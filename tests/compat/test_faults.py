"""Throttling and internal errors on a server of their own (quotas on, short lock wait)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from tests.compat.conftest import Fresh, recent, start_server
from tests.compat.server import Server, expect_error
from tests.factories import AMI, SAAS

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("faults"), "--throttling", db_query="busy_timeout_ms=200"
    )
    yield srv
    srv.stop()


def test_requests_over_the_quota_are_throttled_and_store_nothing(
    faulty: Server, fresh: Fresh
) -> None:
    at = recent()
    outcomes: list[str] = []
    ids: set[str] = set()
    for i in range(30):
        client = faulty.client(fresh.buyer_key())  # one account, many resources
        try:
            out = client.meter_usage(
                ProductCode=AMI, Timestamp=at, UsageDimension="gb", UsageQuantity=i
            )
            outcomes.append("ok")
            ids.add(out["MeteringRecordId"])
        except ClientError as exc:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            assert (
                exc.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"]
                == "ThrottlingException"
            )
            outcomes.append(exc.response["Error"]["Code"])
    assert "ThrottlingException" in outcomes
    assert outcomes.count("ok") >= 10  # the quota itself is served
    assert faulty.record_count() == len(ids)


def test_a_locked_database_is_an_internal_error_and_the_retry_succeeds(
    faulty: Server, fresh: Fresh
) -> None:
    account, _ = fresh.customer()
    records = [
        {
            "Timestamp": recent(),
            "CustomerAWSAccountId": account,
            "Dimension": "users",
            "Quantity": 3,
        }
    ]
    blocker = sqlite3.connect(faulty.db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        response = expect_error(
            faulty,
            "InternalServiceErrorException",
            500,
            faulty.client().batch_meter_usage,
            ProductCode=SAAS,
            UsageRecords=records,
        )
        assert response["Error"]["Message"] == "An internal error has occurred. Retry your request."
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    first = faulty.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=records)
    again = faulty.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=records)
    assert first["Results"][0]["Status"] == again["Results"][0]["Status"] == "Success"
    assert first["Results"][0]["MeteringRecordId"] == again["Results"][0]["MeteringRecordId"]
    assert [r["CustomerAWSAccountId"] for r in faulty.records(SAAS)].count(account) == 1
