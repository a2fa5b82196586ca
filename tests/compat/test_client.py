"""The typed client against a real server process: every operation of both APIs, typed
results with `.raw`, typed errors, and RegisterUsage's signature checked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jwt
import pytest
import yaml

from marketmeter.client import (
    BadSignature,
    DuplicateRequestException,
    ExpiredSignature,
    InvalidUsageDimensionException,
    MarketplaceError,
    MarketplaceMetering,
    Tag,
    UsageAllocation,
    UsageRecord,
    WrongNonce,
    WrongProduct,
    verify_registration_signature,
)
from tests.compat.conftest import Fresh, recent
from tests.compat.server import Server, issue_token, marketmeter
from tests.factories import AMI, CONTAINER, SAAS, SELLER

pytestmark = pytest.mark.compat

CONTRACT = "clientcontract0000000001"


def client_for(server: Server, key: str = "seller") -> MarketplaceMetering:
    key_id, secret, _ = server.keys[key]
    return MarketplaceMetering(
        region_name="us-east-1",
        endpoint_url=server.url,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def test_batch_meter_usage_takes_typed_records_and_dicts(server: Server, fresh: Fresh) -> None:
    (a, _), (b, _) = fresh.customer(), fresh.customer()
    at = recent()
    typed = UsageRecord(
        timestamp=at,
        customer_aws_account_id=a,
        dimension="users",
        quantity_as_decimal=Decimal("3.5"),
        usage_allocations=(
            UsageAllocation(
                allocated_usage_quantity_as_decimal=Decimal("3.5"), tags=(Tag("team", "x"),)
            ),
        ),
    )
    wire = {"Timestamp": at, "CustomerAWSAccountId": b, "Dimension": "users", "Quantity": 2}
    res = client_for(server).batch_meter_usage(product_code=SAAS, usage_records=[typed, wire])
    assert [r.status for r in res.results] == ["Success", "Success"]
    assert res.unprocessed_records == ()
    assert res.results[0].usage_record is not None
    assert res.results[0].usage_record.quantity_as_decimal == Decimal("3.5")
    assert res.results[1].usage_record is not None
    assert res.results[1].usage_record.quantity == 2
    assert res.raw["Results"][0]["MeteringRecordId"] == res.results[0].metering_record_id
    stored = {r["MeteringRecordId"]: r for r in server.records(SAAS)}
    assert stored[res.results[0].metering_record_id]["QuantityAsDecimal"] == "3.5"


def test_meter_usage_and_its_typed_duplicate_error(server: Server, fresh: Fresh) -> None:
    buyer = client_for(server, fresh.buyer_key())
    at = recent()
    first = buyer.meter_usage(
        product_code=AMI, timestamp=at, usage_dimension="gb", usage_quantity=3
    )
    assert first.metering_record_id
    with pytest.raises(DuplicateRequestException) as raised:
        buyer.meter_usage(product_code=AMI, timestamp=at, usage_dimension="gb", usage_quantity=4)
    error = raised.value
    assert isinstance(error, MarketplaceError)
    assert (error.code, error.http_status) == ("DuplicateRequestException", 400)
    assert error.request_id
    assert "quantity 3" in error.message
    assert not error.retryable


def test_resolve_customer_gives_the_customer_and_agreement(server: Server, fresh: Fresh) -> None:
    account, identifier = fresh.customer()
    resolved = client_for(server).resolve_customer(registration_token=issue_token(server, account))
    assert (resolved.customer_aws_account_id, resolved.customer_identifier) == (
        account,
        identifier,
    )
    assert resolved.product_code == SAAS
    assert resolved.metadata is not None
    assert resolved.metadata.agreement_id == resolved.raw["Metadata"]["AgreementId"]


def public_key(server: Server) -> str:
    return marketmeter(
        "keys",
        "public",
        "--database",
        server.database_url,
        "--product",
        CONTAINER,
        "--version",
        "1",
    ).stdout


def test_register_usage_and_its_signature(server: Server, fresh: Fresh) -> None:
    nonce = str(uuid.uuid4())
    out = client_for(server, fresh.buyer_key()).register_usage(
        product_code=CONTAINER, public_key_version=1, nonce=nonce
    )
    assert out.signature is not None
    pem = public_key(server)
    claims = verify_registration_signature(out.signature, pem, product_code=CONTAINER, nonce=nonce)
    assert claims["publicKeyVersion"] == 1
    with pytest.raises(WrongProduct):
        verify_registration_signature(out.signature, pem, product_code=AMI, nonce=nonce)
    with pytest.raises(WrongNonce):
        verify_registration_signature(out.signature, pem, product_code=CONTAINER, nonce="other")
    with pytest.raises(ExpiredSignature):
        verify_registration_signature(
            out.signature,
            pem,
            product_code=CONTAINER,
            nonce=nonce,
            now=datetime.now(UTC) + timedelta(hours=2),
        )
    forged = jwt.encode({"productCode": CONTAINER}, "a-key-of-my-own-that-is-long-enough")
    with pytest.raises(BadSignature):
        verify_registration_signature(forged, pem, product_code=CONTAINER, nonce=nonce)


def test_errors_come_typed_and_unmodeled_ones_as_the_base_class(
    server: Server, fresh: Fresh
) -> None:
    account, _ = fresh.customer()
    seller = client_for(server)
    record = UsageRecord(
        timestamp=recent(), customer_aws_account_id=account, dimension="nope", quantity=1
    )
    with pytest.raises(InvalidUsageDimensionException):
        seller.batch_meter_usage(product_code=SAAS, usage_records=[record])
    with pytest.raises(MarketplaceError) as raised:
        MarketplaceMetering(
            endpoint_url=server.url,
            aws_access_key_id=server.keys["seller"][0],
            aws_secret_access_key="not-the-secret-000000000000000000000000",
        ).resolve_customer(registration_token="x")
    assert type(raised.value) is MarketplaceError
    assert raised.value.code == "InvalidSignatureException"


def test_entitlements_one_page_or_all(server: Server, fresh: Fresh, tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "products": [
                    {
                        "product_code": CONTRACT,
                        "seller_account_id": SELLER,
                        "dimensions": ["seats"],
                        "pricing": "contract",
                    }
                ]
            }
        )
    )
    marketmeter("catalog", "apply", "--database", server.database_url, str(path))
    buyers = [fresh.customer()[0] for _ in range(3)]
    for i, account in enumerate(buyers):
        marketmeter(
            "subscribe",
            "--database",
            server.database_url,
            "--product",
            CONTRACT,
            "--customer-account",
            account,
        )
        marketmeter(
            "entitlement",
            "set",
            "--database",
            server.database_url,
            "--product",
            CONTRACT,
            "--customer-account",
            account,
            "--dimension",
            "seats",
            "--value",
            str(5 * (i + 1)),
        )
    seller = client_for(server)
    page = seller.get_entitlements(product_code=CONTRACT, max_results=2)
    assert len(page.entitlements) == 2
    assert page.next_token
    every = list(seller.iter_entitlements(product_code=CONTRACT, page_size=1))
    assert sorted(
        (e.customer_aws_account_id, e.value.value if e.value else None) for e in every
    ) == [(account, 5 * (i + 1)) for i, account in sorted(enumerate(buyers), key=lambda x: x[1])]
    only = list(
        seller.iter_entitlements(
            product_code=CONTRACT, filter={"CUSTOMER_AWS_ACCOUNT_ID": [buyers[1]]}
        )
    )
    assert [(e.dimension, e.value.value if e.value else None) for e in only] == [("seats", 10)]
