"""Throttling and internal errors, on a server of their own: quotas on, and a writer that
gives up after 200 ms waiting for a lock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from tests.compat.conftest import Fresh, new_database, recent, start_server
from tests.compat.server import Server
from tests.factories import AMI, SAAS

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def faulty(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"faults-{store_kind}")
    options = "busy_timeout_ms=200" if store_kind == "sqlite" else "options=-c%20lock_timeout%3D200"
    srv = start_server(
        new_database(request, store_kind, directory, options), directory, "--throttling"
    )
    yield srv
    srv.stop()


def test_requests_over_the_quota_are_throttled_and_store_nothing(
    faulty: Server, fresh: Fresh
) -> None:
    at = recent()
    outcomes: list[str] = []
    ids: set[str] = set()
    clients = [faulty.client(fresh.buyer_key()) for _ in range(30)]  # one account, many resources
    for i, client in enumerate(clients):  # 30 requests in well under a second
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
    before = faulty.record_count()
    with faulty.records_locked():
        try:
            faulty.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=records)
        except ClientError as exc:
            response = exc.response
        else:
            raise AssertionError("the request succeeded while the records were locked")
    assert response["Error"]["Code"] == "InternalServiceErrorException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert (
        response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"]
        == "InternalServiceErrorException"
    )
    assert response["Error"]["Message"] == "An internal error has occurred. Retry your request."
    assert faulty.record_count() == before
    first = faulty.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=records)
    again = faulty.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=records)
    assert first["Results"][0]["Status"] == again["Results"][0]["Status"] == "Success"
    assert first["Results"][0]["MeteringRecordId"] == again["Results"][0]["MeteringRecordId"]
    assert [r["CustomerAWSAccountId"] for r in faulty.records(SAAS)].count(account) == 1
