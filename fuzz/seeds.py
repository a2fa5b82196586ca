"""The fuzzer's seed corpus (`fuzz/corpus/wire/`), from real boto3 requests: each
operation of both APIs called through the in-process mock, its body captured as boto3
sent it, written as a `fuzz/wire.py` input (operation byte, mode 0, body).

    .venv/bin/python fuzz/seeds.py
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fuzz.wire import OPERATIONS  # noqa: E402
from marketmeter.demo import AMI_PRODUCT, BUYER_KEY, SAAS_PRODUCT, SELLER_KEY  # noqa: E402
from marketmeter.testing import mock_marketplace  # noqa: E402

CORPUS = Path(__file__).with_name("corpus") / "wire"


def main() -> None:
    CORPUS.mkdir(parents=True, exist_ok=True)
    bodies: list[tuple[str, bytes]] = []

    def capture(request: Any, **_: Any) -> None:
        target = request.headers["X-Amz-Target"]
        target = target.decode() if isinstance(target, bytes) else target
        bodies.append((target.rpartition(".")[2], bytes(request.body or b"")))

    def client(service: str, key: tuple[str, str]) -> Any:
        made = boto3.client(
            service,
            region_name="us-east-1",
            aws_access_key_id=key[0],
            aws_secret_access_key=key[1],
            config=Config(retries={"total_max_attempts": 1}),
        )
        made.meta.events.register("before-send.*", capture, unique_id="seed-capture")
        return made

    from marketmeter.demo import demo_catalog

    now = time.time()
    with mock_marketplace(demo_catalog()):
        buyer = client("meteringmarketplace", BUYER_KEY)
        seller = client("meteringmarketplace", SELLER_KEY)
        entitlement = client("marketplace-entitlement", SELLER_KEY)
        calls = [
            lambda: buyer.meter_usage(
                ProductCode=AMI_PRODUCT,
                Timestamp=now,
                UsageDimension="vcpu_hours",
                UsageQuantity=3,
                DryRun=True,
            ),
            lambda: buyer.meter_usage(
                ProductCode=AMI_PRODUCT,
                Timestamp=now,
                UsageDimension="gb_processed",
                UsageQuantity=1,
                ClientToken="seed-token",
                UsageAllocations=[
                    {"AllocatedUsageQuantity": 1, "Tags": [{"Key": "t", "Value": "v"}]}
                ],
            ),
            lambda: seller.batch_meter_usage(
                ProductCode=SAAS_PRODUCT,
                UsageRecords=[
                    {
                        "Timestamp": now,
                        "CustomerAWSAccountId": "444455556666",
                        "Dimension": "users",
                        "Quantity": 2,
                    },
                    {
                        "Timestamp": now,
                        "CustomerIdentifier": "x",
                        "Dimension": "api_calls",
                        "QuantityAsDecimal": "1.5",
                    },
                ],
            ),
            lambda: seller.resolve_customer(RegistrationToken="seed-registration-token"),
            lambda: buyer.register_usage(
                ProductCode=AMI_PRODUCT, PublicKeyVersion=1, Nonce="seed-nonce"
            ),
            lambda: entitlement.get_entitlements(
                ProductCode=SAAS_PRODUCT,
                Filter={"CUSTOMER_AWS_ACCOUNT_ID": ["444455556666"]},
                MaxResults=5,
            ),
        ]
        for call in calls:
            with contextlib.suppress(ClientError):  # an error answer is a seed as good
                call()
    names = [op[1] for op in OPERATIONS]
    for operation, body in bodies:
        data = bytes([names.index(operation), 0]) + body
        (CORPUS / hashlib.sha1(data).hexdigest()).write_bytes(data)
    print(f"{len(bodies)} seeds in {CORPUS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
