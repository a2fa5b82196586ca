"""The benchmark's catalog: big enough that every request of a run is a real insert.

- A SaaS product with 6 dimensions and 40,000 subscribed customers: 40,000 × 6 × 23 hours
  = 5.5 million distinct BatchMeterUsage slots.
- An AMI product with 12 dimensions, and 5,000 access keys (running instances) of one
  subscribed buyer: 5,000 × 12 × 5 hours = 300,000 distinct MeterUsage slots.
"""

from __future__ import annotations

from typing import Any

SELLER = "111122223333"
BUYER = "444455556666"
SELLER_KEY = ("AKIABENCHSELLER00001", "bench-seller-secret-000000000000000000001")
SAAS = "benchsaas0000000000000001"
AMI = "benchami00000000000000001"
SAAS_DIMENSIONS = [f"saas_dim_{i}" for i in range(6)]
AMI_DIMENSIONS = [f"ami_dim_{i}" for i in range(12)]
CUSTOMERS = 40_000
BUYER_KEYS = 5_000


def customer_account(i: int) -> str:
    return f"6{i:011d}"


def customer_identifier(i: int) -> str:
    return f"benchcust{i:06d}"


def buyer_key(i: int) -> tuple[str, str]:
    return f"AKIABENCHBUYER{i:06d}", f"bench-buyer-secret-{i:021d}"


def catalog(customers: int = CUSTOMERS, buyer_keys: int = BUYER_KEYS) -> dict[str, Any]:
    return {
        "accounts": [
            {
                "account_id": SELLER,
                "access_keys": [
                    {"access_key_id": SELLER_KEY[0], "secret_access_key": SELLER_KEY[1]}
                ],
            },
            {
                "account_id": BUYER,
                "access_keys": [
                    {"access_key_id": k, "secret_access_key": s}
                    for k, s in (buyer_key(i) for i in range(buyer_keys))
                ],
            },
        ],
        "products": [
            {
                "product_code": SAAS,
                "seller_account_id": SELLER,
                "type": "saas",
                "dimensions": SAAS_DIMENSIONS,
            },
            {
                "product_code": AMI,
                "seller_account_id": SELLER,
                "type": "ami",
                "dimensions": AMI_DIMENSIONS,
            },
        ],
        "subscriptions": [
            {
                "product_code": SAAS,
                "customer_aws_account_id": customer_account(i),
                "customer_identifier": customer_identifier(i),
            }
            for i in range(customers)
        ]
        + [{"product_code": AMI, "customer_aws_account_id": BUYER}],
    }
