"""BatchMeterUsage through real boto3 against a real server process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.compat.conftest import Fresh, recent
from tests.compat.server import Server, cancel_subscription, expect_error
from tests.factories import (
    AMI,
    BUYER,
    BUYER_CONCURRENT_LICENSE_A,
    BUYER_IDENTIFIER,
    OTHER_SAAS,
    SAAS,
    SAAS_CONCURRENT,
    STRANGER,
)

pytestmark = pytest.mark.compat


def test_success_returns_ids_in_input_order_and_stores_each_record(
    server: Server, fresh: Fresh
) -> None:
    at = recent()
    customers = [fresh.customer() for _ in range(3)]
    records = [
        {"Timestamp": at, "CustomerAWSAccountId": account, "Dimension": "users", "Quantity": n}
        for n, (account, _) in enumerate(customers, 1)
    ]
    out = server.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=records)
    assert out["UnprocessedRecords"] == []
    assert [r["Status"] for r in out["Results"]] == ["Success"] * 3
    assert [r["UsageRecord"]["CustomerAWSAccountId"] for r in out["Results"]] == [
        c[0] for c in customers
    ]
    assert [r["UsageRecord"]["Quantity"] for r in out["Results"]] == [1, 2, 3]
    assert out["Results"][0]["UsageRecord"]["Timestamp"] == at
    stored = {r["MeteringRecordId"]: r for r in server.records(SAAS)}
    for result, (account, identifier) in zip(out["Results"], customers, strict=True):
        row = stored[result["MeteringRecordId"]]
        assert row["CustomerAWSAccountId"] == account
        assert row["CustomerIdentifier"] == identifier
        assert row["Timestamp"] == at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_identical_retry_returns_the_original_id_and_stores_nothing_new(
    server: Server, fresh: Fresh
) -> None:
    account, _ = fresh.customer()
    at = recent()
    record = {
        "Timestamp": at,
        "CustomerAWSAccountId": account,
        "Dimension": "users",
        "QuantityAsDecimal": "17.00",
    }
    first = server.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=[record])
    before = server.record_count()
    same_by_value = {**record, "QuantityAsDecimal": "17", "Timestamp": at + timedelta(seconds=30)}
    again = server.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=[same_by_value])
    assert again["Results"][0]["Status"] == "Success"
    assert again["Results"][0]["MeteringRecordId"] == first["Results"][0]["MeteringRecordId"]
    assert server.record_count() == before


def test_a_subset_of_a_batch_can_be_retried(server: Server, fresh: Fresh) -> None:
    at = recent()
    records = [
        {
            "Timestamp": at,
            "CustomerAWSAccountId": fresh.customer()[0],
            "Dimension": "users",
            "Quantity": 1,
        }
        for _ in range(4)
    ]
    first = server.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=records)
    subset = server.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=records[1:3])
    assert [r["MeteringRecordId"] for r in subset["Results"]] == [
        r["MeteringRecordId"] for r in first["Results"][1:3]
    ]


def test_a_different_quantity_is_a_duplicate_record(server: Server, fresh: Fresh) -> None:
    account, _ = fresh.customer()
    at = recent()
    base = {"Timestamp": at, "CustomerAWSAccountId": account, "Dimension": "users"}
    server.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=[{**base, "Quantity": 5}])
    before = server.record_count()
    out = server.client().batch_meter_usage(
        ProductCode=SAAS, UsageRecords=[{**base, "Quantity": 6}]
    )
    assert out["Results"][0]["Status"] == "DuplicateRecord"
    assert "MeteringRecordId" not in out["Results"][0]
    assert server.record_count() == before


def test_unknown_and_cancelled_customers_are_not_subscribed(server: Server, fresh: Fresh) -> None:
    cancelled, _ = fresh.customer()
    cancel_subscription(server, cancelled)
    at = recent()
    records = [
        {"Timestamp": at, "CustomerIdentifier": "no-such-customer", "Dimension": "users"},
        {"Timestamp": at, "CustomerAWSAccountId": STRANGER, "Dimension": "users"},
        {"Timestamp": at, "CustomerAWSAccountId": cancelled, "Dimension": "users"},
    ]
    before = server.record_count()
    out = server.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=records)
    assert [r["Status"] for r in out["Results"]] == ["CustomerNotSubscribed"] * 3
    assert all("MeteringRecordId" not in r for r in out["Results"])
    assert server.record_count() == before


def test_decimal_quantities_and_allocations_round_trip(server: Server, fresh: Fresh) -> None:
    account, _ = fresh.customer()
    record = {
        "Timestamp": recent(),
        "CustomerAWSAccountId": account,
        "Dimension": "storage_gb",
        "QuantityAsDecimal": "3.75",
        "UsageAllocations": [
            {
                "AllocatedUsageQuantityAsDecimal": "1.25",
                "Tags": [{"Key": "team", "Value": "alpha"}],
            },
            {"AllocatedUsageQuantityAsDecimal": "2.5"},
        ],
    }
    out = server.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=[record])
    assert out["Results"][0]["UsageRecord"]["UsageAllocations"] == record["UsageAllocations"]
    [row] = [
        r
        for r in server.records(SAAS)
        if r["MeteringRecordId"] == out["Results"][0]["MeteringRecordId"]
    ]
    assert row["QuantityAsDecimal"] == "3.75"
    assert row["Quantity"] == 3.75
    assert row["UsageAllocations"] == record["UsageAllocations"]


def test_license_arn_without_product_code(server: Server) -> None:
    at = recent()
    out = server.client().batch_meter_usage(
        UsageRecords=[
            {
                "Timestamp": at,
                "CustomerAWSAccountId": BUYER,
                "LicenseArn": BUYER_CONCURRENT_LICENSE_A,
                "Dimension": "users",
                "Quantity": 2,
            }
        ]
    )
    assert out["Results"][0]["Status"] == "Success"
    [row] = [
        r
        for r in server.records(SAAS_CONCURRENT)
        if r["MeteringRecordId"] == out["Results"][0]["MeteringRecordId"]
    ]
    assert row["LicenseArn"] == BUYER_CONCURRENT_LICENSE_A


def test_an_empty_batch_returns_both_lists(server: Server) -> None:
    out = server.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=[])
    assert out["Results"] == []
    assert out["UnprocessedRecords"] == []


class TestErrors:
    def test_26_records_is_a_validation_exception(self, server: Server, fresh: Fresh) -> None:
        account, _ = fresh.customer()
        records = [
            {"Timestamp": recent(), "CustomerAWSAccountId": account, "Dimension": "users"}
        ] * 26
        response = expect_error(
            server,
            "ValidationException",
            400,
            server.client().batch_meter_usage,
            ProductCode=SAAS,
            UsageRecords=records,
        )
        assert response["Error"]["Message"] == (
            "1 validation error detected: Value '[26 items]' at 'usageRecords' failed to satisfy "
            "constraint: Member must have length less than or equal to 25"
        )

    def test_every_violation_is_reported(self, server: Server) -> None:
        records = [
            {
                "Timestamp": recent(),
                "CustomerAWSAccountId": "12ab",
                "Dimension": "users",
                "Quantity": 2**31,
            },
        ]
        response = expect_error(
            server,
            "ValidationException",
            400,
            server.client().batch_meter_usage,
            ProductCode="bad code",
            UsageRecords=records,
        )
        message = response["Error"]["Message"]
        assert message.startswith("3 validation errors detected: ")
        assert "at 'productCode'" in message
        assert "at 'usageRecords.1.member.customerAWSAccountId'" in message
        assert (
            "at 'usageRecords.1.member.quantity' failed to satisfy constraint: Member must have value less than or equal to 2147483647"
            in message
        )

    def test_both_customer_fields_is_a_validation_exception(self, server: Server) -> None:
        records = [
            {
                "Timestamp": recent(),
                "CustomerAWSAccountId": BUYER,
                "CustomerIdentifier": BUYER_IDENTIFIER,
                "Dimension": "users",
            }
        ]
        response = expect_error(
            server,
            "ValidationException",
            400,
            server.client().batch_meter_usage,
            ProductCode=SAAS,
            UsageRecords=records,
        )
        assert "CustomerIdentifier and CustomerAWSAccountId" in response["Error"]["Message"]

    def test_both_quantity_forms_is_a_validation_exception(
        self, server: Server, fresh: Fresh
    ) -> None:
        records = [
            {
                "Timestamp": recent(),
                "CustomerAWSAccountId": fresh.customer()[0],
                "Dimension": "users",
                "Quantity": 1,
                "QuantityAsDecimal": "1",
            }
        ]
        expect_error(
            server,
            "ValidationException",
            400,
            server.client().batch_meter_usage,
            ProductCode=SAAS,
            UsageRecords=records,
        )

    def test_product_code_with_license_arn_is_a_validation_exception(self, server: Server) -> None:
        records = [
            {
                "Timestamp": recent(),
                "CustomerAWSAccountId": BUYER,
                "LicenseArn": BUYER_CONCURRENT_LICENSE_A,
                "Dimension": "users",
            }
        ]
        expect_error(
            server,
            "ValidationException",
            400,
            server.client().batch_meter_usage,
            ProductCode=SAAS,
            UsageRecords=records,
        )

    def test_invalid_product_code(self, server: Server, fresh: Fresh) -> None:
        records = [
            {
                "Timestamp": recent(),
                "CustomerAWSAccountId": fresh.customer()[0],
                "Dimension": "users",
            }
        ]
        for product in (OTHER_SAAS, "unknownproduct", AMI):
            expect_error(
                server,
                "InvalidProductCodeException",
                400,
                server.client().batch_meter_usage,
                ProductCode=product,
                UsageRecords=records,
            )

    def test_invalid_usage_dimension_fails_the_whole_batch(
        self, server: Server, fresh: Fresh
    ) -> None:
        at = recent()
        records = [
            {"Timestamp": at, "CustomerAWSAccountId": fresh.customer()[0], "Dimension": "users"},
            {"Timestamp": at, "CustomerAWSAccountId": fresh.customer()[0], "Dimension": "cpu"},
        ]
        expect_error(
            server,
            "InvalidUsageDimensionException",
            400,
            server.client().batch_meter_usage,
            ProductCode=SAAS,
            UsageRecords=records,
        )

    def test_one_old_record_fails_the_whole_batch(self, server: Server, fresh: Fresh) -> None:
        now = datetime.now(UTC)
        records = [
            {
                "Timestamp": recent(),
                "CustomerAWSAccountId": fresh.customer()[0],
                "Dimension": "users",
            },
            {
                "Timestamp": now - timedelta(hours=24, minutes=1),
                "CustomerAWSAccountId": fresh.customer()[0],
                "Dimension": "users",
            },
        ]
        response = expect_error(
            server,
            "TimestampOutOfBoundsException",
            400,
            server.client().batch_meter_usage,
            ProductCode=SAAS,
            UsageRecords=records,
        )
        assert "24 hours" in response["Error"]["Message"]

    def test_a_record_from_the_future_fails_the_batch(self, server: Server, fresh: Fresh) -> None:
        records = [
            {
                "Timestamp": datetime.now(UTC) + timedelta(minutes=10),
                "CustomerAWSAccountId": fresh.customer()[0],
                "Dimension": "users",
            }
        ]
        expect_error(
            server,
            "TimestampOutOfBoundsException",
            400,
            server.client().batch_meter_usage,
            ProductCode=SAAS,
            UsageRecords=records,
        )

    def test_invalid_tag(self, server: Server, fresh: Fresh) -> None:
        six = [{"Key": f"k{i}", "Value": "v"} for i in range(6)]
        records = [
            {
                "Timestamp": recent(),
                "CustomerAWSAccountId": fresh.customer()[0],
                "Dimension": "users",
                "Quantity": 1,
                "UsageAllocations": [{"AllocatedUsageQuantity": 1, "Tags": six}],
            }
        ]
        expect_error(
            server,
            "InvalidTagException",
            400,
            server.client().batch_meter_usage,
            ProductCode=SAAS,
            UsageRecords=records,
        )

    def test_invalid_usage_allocations(self, server: Server, fresh: Fresh) -> None:
        records = [
            {
                "Timestamp": recent(),
                "CustomerAWSAccountId": fresh.customer()[0],
                "Dimension": "users",
                "Quantity": 5,
                "UsageAllocations": [{"AllocatedUsageQuantity": 4}],
            }
        ]
        response = expect_error(
            server,
            "InvalidUsageAllocationsException",
            400,
            server.client().batch_meter_usage,
            ProductCode=SAAS,
            UsageRecords=records,
        )
        assert "4 allocated, 5 metered" in response["Error"]["Message"]

    def test_invalid_customer_identifier_on_a_concurrent_agreement_product(
        self, server: Server
    ) -> None:
        records = [
            {"Timestamp": recent(), "CustomerIdentifier": BUYER_IDENTIFIER, "Dimension": "users"}
        ]
        expect_error(
            server,
            "InvalidCustomerIdentifierException",
            400,
            server.client().batch_meter_usage,
            ProductCode=SAAS_CONCURRENT,
            UsageRecords=records,
        )

    def test_invalid_license(self, server: Server, fresh: Fresh) -> None:
        account, _ = fresh.customer()
        records = [
            {
                "Timestamp": recent(),
                "CustomerAWSAccountId": account,
                "LicenseArn": BUYER_CONCURRENT_LICENSE_A,
                "Dimension": "users",
            }
        ]
        expect_error(
            server,
            "InvalidLicenseException",
            400,
            server.client().batch_meter_usage,
            UsageRecords=records,
        )

    def test_disabled_api_in_a_region_not_enabled(self, server: Server, fresh: Fresh) -> None:
        records = [
            {
                "Timestamp": recent(),
                "CustomerAWSAccountId": fresh.customer()[0],
                "Dimension": "users",
            }
        ]
        response = expect_error(
            server,
            "DisabledApiException",
            400,
            server.client(region="ap-south-1").batch_meter_usage,
            ProductCode=SAAS,
            UsageRecords=records,
        )
        assert "ap-south-1" in response["Error"]["Message"]


def test_a_license_of_an_ami_product_is_refused(server: Server) -> None:
    [(license_arn,)] = server.sql(
        "SELECT license_arn FROM subscriptions WHERE product_code = ? AND customer_aws_account_id = ?",
        (AMI, BUYER),
    )
    records = [
        {
            "Timestamp": recent(),
            "CustomerAWSAccountId": BUYER,
            "LicenseArn": license_arn,
            "Dimension": "vcpu_hours",
        }
    ]
    response = expect_error(
        server,
        "InvalidProductCodeException",
        400,
        server.client().batch_meter_usage,
        UsageRecords=records,
    )
    assert "SaaS" in response["Error"]["Message"]
