"""Plain functions that build catalogs, callers and usage inputs with sane defaults."""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal
from typing import Any

from marketmeter.domain.models import (
    AccessKey,
    Allocation,
    Caller,
    MeterUsageRequest,
    Tag,
    UsageRecord,
)
from marketmeter.domain.quantities import Quantity

SELLER = "111122223333"
OTHER_SELLER = "222233334444"
BUYER = "444455556666"
BUYER2 = "777788889999"
STRANGER = "999900001111"  # an account with keys and no subscription

SAAS = "saasproduct00000000000001"
SAAS_CONCURRENT = "saasconcurrent00000000001"
OTHER_SAAS = "othersellersaas0000000001"
AMI = "amiproduct000000000000001"
CONTAINER = "containerproduct000000001"

KEYS = {
    "seller": ("AKIASELLER0000000001", "seller-secret-0000000000000000000000001", SELLER),
    "other_seller": (
        "AKIAOTHERSELLER00001",
        "other-seller-secret-00000000000000000001",
        OTHER_SELLER,
    ),
    "buyer": ("AKIABUYER00000000001", "buyer-secret-000000000000000000000000001", BUYER),
    "buyer_task2": ("AKIABUYER00000000002", "buyer-secret-000000000000000000000000002", BUYER),
    "buyer2": ("AKIABUYERTWO00000001", "buyer2-secret-00000000000000000000000001", BUYER2),
    "stranger": ("AKIASTRANGER00000001", "stranger-secret-000000000000000000000001", STRANGER),
}

BUYER_IDENTIFIER = "custBuyer01"
BUYER2_IDENTIFIER = "custBuyer02"
BUYER_LICENSE = f"arn:aws:license-manager::{BUYER}:license:l-00000000000000000000000000000001"
BUYER_CONCURRENT_LICENSE_A = (
    f"arn:aws:license-manager::{BUYER}:license:l-0000000000000000000000000000000a"
)
BUYER_CONCURRENT_LICENSE_B = (
    f"arn:aws:license-manager::{BUYER}:license:l-0000000000000000000000000000000b"
)
BUYER2_OTHER_SAAS_LICENSE = (
    f"arn:aws:license-manager::{BUYER2}:license:l-00000000000000000000000000000009"
)


def _keys(*names: str) -> list[dict[str, Any]]:
    return [{"access_key_id": KEYS[n][0], "secret_access_key": KEYS[n][1]} for n in names]


BASE_CATALOG: dict[str, Any] = {
    "accounts": [
        {"account_id": SELLER, "name": "Seller", "access_keys": _keys("seller")},
        {"account_id": OTHER_SELLER, "access_keys": _keys("other_seller")},
        {"account_id": BUYER, "access_keys": _keys("buyer", "buyer_task2")},
        {"account_id": BUYER2, "access_keys": _keys("buyer2")},
        {"account_id": STRANGER, "access_keys": _keys("stranger")},
    ],
    "products": [
        {
            "product_code": SAAS,
            "seller_account_id": SELLER,
            "type": "saas",
            "dimensions": ["users", "storage_gb"],
        },
        {
            "product_code": SAAS_CONCURRENT,
            "seller_account_id": SELLER,
            "type": "saas",
            "dimensions": ["users"],
            "concurrent_agreements": True,
        },
        {
            "product_code": OTHER_SAAS,
            "seller_account_id": OTHER_SELLER,
            "type": "saas",
            "dimensions": ["users"],
        },
        {
            "product_code": AMI,
            "seller_account_id": SELLER,
            "type": "ami",
            "dimensions": ["vcpu_hours", "gb"],
        },
        {
            "product_code": CONTAINER,
            "seller_account_id": SELLER,
            "type": "container",
            "dimensions": ["tasks"],
        },
    ],
    "subscriptions": [
        {
            "product_code": SAAS,
            "customer_aws_account_id": BUYER,
            "customer_identifier": BUYER_IDENTIFIER,
            "license_arn": BUYER_LICENSE,
            "agreement_id": "agmt-buyer-saas",
        },
        {
            "product_code": SAAS,
            "customer_aws_account_id": BUYER2,
            "customer_identifier": BUYER2_IDENTIFIER,
        },
        {
            "product_code": SAAS_CONCURRENT,
            "customer_aws_account_id": BUYER,
            "license_arn": BUYER_CONCURRENT_LICENSE_A,
            "agreement_id": "agmt-concurrent-a",
        },
        {
            "product_code": SAAS_CONCURRENT,
            "customer_aws_account_id": BUYER,
            "license_arn": BUYER_CONCURRENT_LICENSE_B,
            "agreement_id": "agmt-concurrent-b",
        },
        {
            "product_code": OTHER_SAAS,
            "customer_aws_account_id": BUYER2,
            "license_arn": BUYER2_OTHER_SAAS_LICENSE,
        },
        {"product_code": AMI, "customer_aws_account_id": BUYER},
        {"product_code": CONTAINER, "customer_aws_account_id": BUYER},
    ],
}


def make_catalog() -> dict[str, Any]:
    return copy.deepcopy(BASE_CATALOG)


def caller(name: str = "seller", signed_in: str = "us-east-1", **key_fields: Any) -> Caller:
    """A caller signing with one of KEYS in Region `signed_in`; key_fields set AccessKey's."""
    key_id, secret, account = KEYS[name]
    return Caller(AccessKey(key_id, secret, account, **key_fields), signed_in)


def qty(value: int | str) -> Quantity:
    if isinstance(value, int):
        return Quantity.from_integer(value)
    return Quantity.from_decimal_string(value)


def tags(**pairs: str) -> tuple[Tag, ...]:
    return tuple(Tag(k, v) for k, v in pairs.items())


def alloc(value: int | str, **pairs: str) -> Allocation:
    return Allocation(qty(value), tags(**pairs))


def record(
    at: datetime,
    *,
    dimension: str = "users",
    quantity: int | str = 1,
    customer: str | None = None,
    account: str | None = BUYER,
    license_arn: str | None = None,
    allocations: tuple[Allocation, ...] | None = None,
) -> UsageRecord:
    return UsageRecord(
        timestamp=at,
        dimension=dimension,
        quantity=qty(quantity),
        customer_identifier=customer,
        customer_aws_account_id=None if customer is not None else account,
        license_arn=license_arn,
        allocations=allocations,
    )


def meter(
    at: datetime,
    *,
    product: str = AMI,
    dimension: str = "vcpu_hours",
    quantity: int | str = 1,
    allocations: tuple[Allocation, ...] | None = None,
    dry_run: bool = False,
    client_token: str | None = None,
) -> MeterUsageRequest:
    return MeterUsageRequest(
        product_code=product,
        timestamp=at,
        dimension=dimension,
        quantity=qty(quantity),
        allocations=allocations,
        dry_run=dry_run,
        client_token=client_token,
    )


def micros(value: str) -> int:
    return int(Decimal(value) * 1_000_000)
