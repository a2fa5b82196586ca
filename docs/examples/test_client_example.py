"""Every operation of both APIs through the typed client (docs/client.md)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from conftest import BUYER, SELLER, marketmeter
from marketmeter.client import (
    DuplicateRequestException,
    MarketplaceMetering,
    Tag,
    UsageAllocation,
    UsageRecord,
    verify_registration_signature,
)

SAAS = "saas0000000000000000000001"


def test_every_operation(metering_server):
    database, endpoint = metering_server
    seller = MarketplaceMetering(
        region_name="us-east-1",
        endpoint_url=endpoint,  # None (the default): AWS itself
        aws_access_key_id=SELLER[0],
        aws_secret_access_key=SELLER[1],
    )

    # ResolveCustomer: the token your fulfillment URL receives.
    token = marketmeter(
        "subscribe", "--product", SAAS, "--customer-account", "777788889999", database=database
    ).splitlines()[-1]
    customer = seller.resolve_customer(registration_token=token)
    assert customer.customer_aws_account_id == "777788889999"
    assert customer.metadata is not None
    assert customer.metadata.agreement_id.startswith("agmt-")

    # BatchMeterUsage: typed records, or dicts in the wire's names.
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    result = seller.batch_meter_usage(
        product_code=SAAS,
        usage_records=[
            UsageRecord(
                timestamp=hour,
                customer_aws_account_id="777788889999",
                dimension="users",
                quantity_as_decimal=Decimal("3.5"),
                usage_allocations=(
                    UsageAllocation(
                        allocated_usage_quantity_as_decimal=Decimal("3.5"),
                        tags=(Tag("team", "data"),),
                    ),
                ),
            ),
            {
                "Timestamp": hour,
                "CustomerAWSAccountId": "777788889999",
                "Dimension": "storage_gb",
                "Quantity": 120,
            },
        ],
    )
    assert [r.status for r in result.results] == ["Success", "Success"]
    assert result.unprocessed_records == ()
    assert "ResponseMetadata" in result.raw  # the wire answer, as botocore read it

    # MeterUsage and RegisterUsage: with the buyer's credentials (its instance or task).
    buyer = MarketplaceMetering(
        endpoint_url=endpoint, aws_access_key_id=BUYER[0], aws_secret_access_key=BUYER[1]
    )
    metered = buyer.meter_usage(
        product_code="ami00000000000000000000001",
        timestamp=hour,
        usage_dimension="vcpu_hours",
        usage_quantity=4,
    )
    assert metered.metering_record_id
    with pytest.raises(DuplicateRequestException) as refused:  # another quantity, same hour
        buyer.meter_usage(
            product_code="ami00000000000000000000001",
            timestamp=hour,
            usage_dimension="vcpu_hours",
            usage_quantity=5,
        )
    assert refused.value.http_status == 400
    assert refused.value.request_id

    registered = buyer.register_usage(
        product_code="container000000000000000001", public_key_version=1, nonce="n-123"
    )
    public_key = marketmeter(
        "keys", "public", "--product", "container000000000000000001", "--version", "1",
        database=database,
    )  # fmt: skip
    claims = verify_registration_signature(
        registered.signature,
        public_key,
        product_code="container000000000000000001",
        nonce="n-123",
    )
    assert claims["publicKeyVersion"] == 1

    # GetEntitlements: one page, or every page.
    for account, seats in (("777788889999", "25"), ("123412341234", "10")):
        marketmeter(
            "subscribe", "--product", "contract000000000000000001",
            "--customer-account", account, database=database,
        )  # fmt: skip
        marketmeter(
            "entitlement", "set", "--product", "contract000000000000000001",
            "--customer-account", account, "--dimension", "seats", "--value", seats,
            database=database,
        )  # fmt: skip
    page = seller.get_entitlements(product_code="contract000000000000000001", max_results=1)
    assert len(page.entitlements) == 1
    assert page.next_token
    seats_by_account = {
        e.customer_aws_account_id: e.value.value
        for e in seller.iter_entitlements(product_code="contract000000000000000001")
    }
    assert seats_by_account == {"777788889999": 25, "123412341234": 10}
