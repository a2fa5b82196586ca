"""MeterUsage through real boto3 (buyer credentials) against a real server process."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.compat.conftest import Fresh, recent
from tests.compat.server import Server, expect_error
from tests.factories import AMI, BUYER, CONTAINER, SAAS

pytestmark = pytest.mark.compat


def test_a_buyer_meters_and_the_record_is_stored(server: Server, fresh: Fresh) -> None:
    key = fresh.buyer_key()
    at = recent()
    out = server.client(key).meter_usage(
        ProductCode=AMI, Timestamp=at, UsageDimension="vcpu_hours", UsageQuantity=4
    )
    [row] = [r for r in server.records(AMI) if r["MeteringRecordId"] == out["MeteringRecordId"]]
    assert row["CustomerAWSAccountId"] == BUYER
    assert row["Quantity"] == 4
    assert row["Operation"] == "MeterUsage"


def test_identical_after_flooring_returns_the_same_id(server: Server, fresh: Fresh) -> None:
    client = server.client(fresh.buyer_key())
    at = recent()
    first = client.meter_usage(
        ProductCode=AMI, Timestamp=at, UsageDimension="gb", UsageQuantityAsDecimal="2.50"
    )
    before = server.record_count()
    # boto3 sends a new ClientToken on every call; the hour rule makes the retry idempotent.
    again = client.meter_usage(
        ProductCode=AMI,
        Timestamp=at.replace(second=59),
        UsageDimension="gb",
        UsageQuantityAsDecimal="2.5",
    )
    assert again["MeteringRecordId"] == first["MeteringRecordId"]
    assert server.record_count() == before


def test_the_same_client_token_replays_the_answer(server: Server, fresh: Fresh) -> None:
    client = server.client(fresh.buyer_key())
    token = str(uuid.uuid4())
    at = recent()
    first = client.meter_usage(
        ProductCode=AMI, Timestamp=at, UsageDimension="gb", UsageQuantity=1, ClientToken=token
    )
    again = client.meter_usage(
        ProductCode=AMI, Timestamp=at, UsageDimension="gb", UsageQuantity=1, ClientToken=token
    )
    assert again["MeteringRecordId"] == first["MeteringRecordId"]


def test_each_resource_meters_its_own_hour(server: Server, fresh: Fresh) -> None:
    at = recent()
    a = server.client(fresh.buyer_key()).meter_usage(
        ProductCode=AMI, Timestamp=at, UsageDimension="gb", UsageQuantity=1
    )
    b = server.client(fresh.buyer_key()).meter_usage(
        ProductCode=AMI, Timestamp=at, UsageDimension="gb", UsageQuantity=2
    )
    assert a["MeteringRecordId"] != b["MeteringRecordId"]


def test_allocations_are_accepted_and_stored(server: Server, fresh: Fresh) -> None:
    allocations = [
        {"AllocatedUsageQuantity": 3, "Tags": [{"Key": "env", "Value": "prod"}]},
        {"AllocatedUsageQuantity": 2, "Tags": [{"Key": "env", "Value": "dev"}]},
    ]
    out = server.client(fresh.buyer_key()).meter_usage(
        ProductCode=AMI,
        Timestamp=recent(),
        UsageDimension="vcpu_hours",
        UsageQuantity=5,
        UsageAllocations=allocations,
    )
    [row] = [r for r in server.records(AMI) if r["MeteringRecordId"] == out["MeteringRecordId"]]
    assert row["UsageAllocations"] == allocations


class TestErrors:
    def test_duplicate_request(self, server: Server, fresh: Fresh) -> None:
        client = server.client(fresh.buyer_key())
        at = recent()
        client.meter_usage(ProductCode=AMI, Timestamp=at, UsageDimension="gb", UsageQuantity=1)
        response = expect_error(
            server,
            "DuplicateRequestException",
            400,
            client.meter_usage,
            ProductCode=AMI,
            Timestamp=at,
            UsageDimension="gb",
            UsageQuantity=2,
        )
        assert "quantity 1" in response["Error"]["Message"]

    def test_idempotency_conflict(self, server: Server, fresh: Fresh) -> None:
        client = server.client(fresh.buyer_key())
        token = str(uuid.uuid4())
        at = recent()
        client.meter_usage(
            ProductCode=AMI, Timestamp=at, UsageDimension="gb", UsageQuantity=1, ClientToken=token
        )
        expect_error(
            server,
            "IdempotencyConflictException",
            409,
            client.meter_usage,
            ProductCode=AMI,
            Timestamp=at,
            UsageDimension="vcpu_hours",
            UsageQuantity=1,
            ClientToken=token,
        )

    def test_dry_run_that_would_succeed_is_dry_run_operation(
        self, server: Server, fresh: Fresh
    ) -> None:
        client = server.client(fresh.buyer_key())
        response = expect_error(
            server,
            "DryRunOperation",
            412,
            client.meter_usage,
            ProductCode=AMI,
            Timestamp=recent(),
            UsageDimension="gb",
            UsageQuantity=1,
            DryRun=True,
        )
        assert (
            response["Error"]["Message"] == "Request would have succeeded, but DryRun flag is set."
        )

    def test_dry_run_of_a_failing_request_gives_its_error(
        self, server: Server, fresh: Fresh
    ) -> None:
        client = server.client(fresh.buyer_key())
        expect_error(
            server,
            "InvalidUsageDimensionException",
            400,
            client.meter_usage,
            ProductCode=AMI,
            Timestamp=recent(),
            UsageDimension="nope",
            DryRun=True,
        )

    def test_customer_not_entitled(self, server: Server) -> None:
        expect_error(
            server,
            "CustomerNotEntitledException",
            400,
            server.client("stranger").meter_usage,
            ProductCode=AMI,
            Timestamp=recent(),
            UsageDimension="gb",
            UsageQuantity=1,
        )

    def test_invalid_product_code(self, server: Server, fresh: Fresh) -> None:
        client = server.client(fresh.buyer_key())
        for product in ("unknownproduct", SAAS):
            expect_error(
                server,
                "InvalidProductCodeException",
                400,
                client.meter_usage,
                ProductCode=product,
                Timestamp=recent(),
                UsageDimension="users",
                UsageQuantity=1,
            )

    def test_invalid_usage_dimension(self, server: Server, fresh: Fresh) -> None:
        expect_error(
            server,
            "InvalidUsageDimensionException",
            400,
            server.client(fresh.buyer_key()).meter_usage,
            ProductCode=CONTAINER,
            Timestamp=recent(),
            UsageDimension="users",
            UsageQuantity=1,
        )

    def test_timestamp_more_than_six_hours_old(self, server: Server, fresh: Fresh) -> None:
        old = datetime.now(UTC) - timedelta(hours=6, minutes=1)
        response = expect_error(
            server,
            "TimestampOutOfBoundsException",
            400,
            server.client(fresh.buyer_key()).meter_usage,
            ProductCode=AMI,
            Timestamp=old,
            UsageDimension="gb",
            UsageQuantity=1,
        )
        assert "6 hours" in response["Error"]["Message"]

    def test_invalid_endpoint_region(self, server: Server) -> None:
        response = expect_error(
            server,
            "InvalidEndpointRegionException",
            400,
            server.client("pinned", region="eu-west-1").meter_usage,
            ProductCode=AMI,
            Timestamp=recent(),
            UsageDimension="gb",
            UsageQuantity=1,
        )
        assert "us-east-1" in response["Error"]["Message"]

    def test_invalid_tag(self, server: Server, fresh: Fresh) -> None:
        allocations = [{"AllocatedUsageQuantity": 1, "Tags": [{"Key": "a<b", "Value": "x"}]}]
        expect_error(
            server,
            "InvalidTagException",
            400,
            server.client(fresh.buyer_key()).meter_usage,
            ProductCode=AMI,
            Timestamp=recent(),
            UsageDimension="gb",
            UsageQuantity=1,
            UsageAllocations=allocations,
        )

    def test_invalid_usage_allocations(self, server: Server, fresh: Fresh) -> None:
        allocations = [{"AllocatedUsageQuantityAsDecimal": "1"}]
        response = expect_error(
            server,
            "InvalidUsageAllocationsException",
            400,
            server.client(fresh.buyer_key()).meter_usage,
            ProductCode=AMI,
            Timestamp=recent(),
            UsageDimension="gb",
            UsageQuantity=1,
            UsageAllocations=allocations,
        )
        assert "same type of quantity" in response["Error"]["Message"]

    def test_both_quantity_forms_is_a_validation_exception(
        self, server: Server, fresh: Fresh
    ) -> None:
        expect_error(
            server,
            "ValidationException",
            400,
            server.client(fresh.buyer_key()).meter_usage,
            ProductCode=AMI,
            Timestamp=recent(),
            UsageDimension="gb",
            UsageQuantity=1,
            UsageQuantityAsDecimal="1",
        )

    def test_a_bad_decimal_is_a_validation_exception(self, server: Server, fresh: Fresh) -> None:
        response = expect_error(
            server,
            "ValidationException",
            400,
            server.client(fresh.buyer_key()).meter_usage,
            ProductCode=AMI,
            Timestamp=recent(),
            UsageDimension="gb",
            UsageQuantityAsDecimal="1.1234567",
        )
        assert "usageQuantityAsDecimal" in response["Error"]["Message"]
