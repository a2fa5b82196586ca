"""One scenario, run against the in-process mock and against a real server (the plugin's
two fixtures): every answer the same, but for the ids each makes anew — calls from
several threads, the clock, faults and the records read back included."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from marketmeter.testing import MarketplaceHandle
from marketmeter.testing.server import MarketmeterServer

SAAS = "kitsaas000000000000000001"
AMI = "kitami0000000000000000001"
CONTRACT = "kitcontract00000000000001"
BUYER = "444455556666"
KEYS = {
    "seller": ("AKIAKITSELLER0000001", "kit-seller-secret-000000000000000000001"),
    "buyer": ("AKIAKITBUYER00000001", "kit-buyer-secret-0000000000000000000001"),
}
THREAD_ACCOUNTS = [f"3000000000{i:02d}" for i in range(6)]

Client = Callable[[str, str], Any]  # (service, whose key) -> botocore client


def call(client: Any, operation: str, **params: Any) -> dict[str, Any]:
    """The answer, or the error, without what varies by request."""
    try:
        answer = getattr(client, operation)(**params)
    except ClientError as exc:
        return {
            "error": exc.response["Error"]["Code"],
            "status": exc.response["ResponseMetadata"]["HTTPStatusCode"],
        }
    answer.pop("ResponseMetadata", None)
    return dict(answer)


def scenario(handle: MarketplaceHandle, client: Client) -> list[Any]:
    seller, buyer = client("meteringmarketplace", "seller"), client("meteringmarketplace", "buyer")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    answers: list[Any] = []

    def record(account: str, quantity: int, dimension: str = "users", at: datetime = hour) -> Any:
        return {
            "Timestamp": at,
            "CustomerAWSAccountId": account,
            "Dimension": dimension,
            "Quantity": quantity,
        }

    # Registration.
    token = handle.subscribe(SAAS, BUYER)
    answers.append(call(seller, "resolve_customer", RegistrationToken=token))
    answers.append(call(seller, "resolve_customer", RegistrationToken=token + "x"))
    # Batches: stored, the same again, another quantity, not subscribed, too old, too many.
    first = call(seller, "batch_meter_usage", ProductCode=SAAS, UsageRecords=[record(BUYER, 5)])
    assert first["Results"][0]["Status"] == "Success"
    answers.append(first)
    answers.append(
        call(seller, "batch_meter_usage", ProductCode=SAAS, UsageRecords=[record(BUYER, 5)])
    )
    answers.append(
        call(seller, "batch_meter_usage", ProductCode=SAAS, UsageRecords=[record(BUYER, 6)])
    )
    answers.append(
        call(
            seller, "batch_meter_usage", ProductCode=SAAS, UsageRecords=[record("999988887777", 1)]
        )
    )
    old = hour - timedelta(days=3)
    answers.append(
        call(seller, "batch_meter_usage", ProductCode=SAAS, UsageRecords=[record(BUYER, 1, at=old)])
    )
    many = [record(BUYER, 1, f"d{i}") for i in range(26)]
    answers.append(call(seller, "batch_meter_usage", ProductCode=SAAS, UsageRecords=many))
    answers.append(
        call(
            seller, "batch_meter_usage", ProductCode=SAAS, UsageRecords=[record(BUYER, 1, "colour")]
        )
    )
    # MeterUsage, with the buyer's key (its instance).
    meter = {"ProductCode": AMI, "Timestamp": hour, "UsageDimension": "vcpu_hours"}
    answers.append(call(buyer, "meter_usage", **meter, UsageQuantity=3))
    answers.append(call(buyer, "meter_usage", **meter, UsageQuantity=3))
    answers.append(call(buyer, "meter_usage", **meter, UsageQuantity=4))
    earlier = {**meter, "Timestamp": hour - timedelta(hours=1)}
    answers.append(call(buyer, "meter_usage", **earlier, UsageQuantity=4, DryRun=True))
    # Entitlements.
    handle.subscribe(CONTRACT, BUYER)
    handle.entitlement(CONTRACT, BUYER, "seats", 12)
    entitlements = client("marketplace-entitlement", "seller")
    answers.append(call(entitlements, "get_entitlements", ProductCode=CONTRACT))
    # Many threads at once, each its own customer; each sends its batch three times.
    for account in THREAD_ACCOUNTS:
        handle.subscribe(SAAS, account)
    by_thread: dict[str, list[Any]] = {}

    def work(account: str) -> None:
        by_thread[account] = [
            call(
                seller,
                "batch_meter_usage",
                ProductCode=SAAS,
                UsageRecords=[record(account, 2), record(account, 3, "storage_gb")],
            )
            for _ in range(3)
        ]

    threads = [threading.Thread(target=work, args=(a,)) for a in THREAD_ACCOUNTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answers.append([by_thread[a] for a in THREAD_ACCOUNTS])
    # Faults, then the clock: an unsubscribed buyer's final hour closes.
    handle.faults.set(throttle=True)
    answers.append(
        call(
            seller,
            "batch_meter_usage",
            ProductCode=SAAS,
            UsageRecords=[record(BUYER, 1, "storage_gb")],
        )
    )
    handle.faults.clear()
    handle.unsubscribe(SAAS, BUYER)
    now = handle.clock.now().replace(minute=0, second=0, microsecond=0)  # the same both ways
    answers.append(
        call(
            seller,
            "batch_meter_usage",
            ProductCode=SAAS,
            UsageRecords=[record(BUYER, 1, "storage_gb", now)],
        )
    )
    later = handle.clock.advance("61m").replace(minute=0, second=0, microsecond=0)
    answers.append(
        call(
            seller,
            "batch_meter_usage",
            ProductCode=SAAS,
            UsageRecords=[record(BUYER, 1, "storage_gb", later)],
        )
    )
    # What was stored.
    answers.append(
        sorted(
            (r.customer_aws_account_id, r.dimension, str(r.quantity), r.operation)
            for r in handle.records()
        )
    )
    report = handle.usage(SAAS, group=["dimension"], end=later + timedelta(hours=1)).as_json()
    answers.append({k: v for k, v in report.items() if k not in ("from", "to")})
    return answers


class Ids:
    """Replaces each id with its order of first appearance, and each CustomerIdentifier
    with the account it belongs to: what is left must be equal."""

    def __init__(self, handle: MarketplaceHandle) -> None:
        self._ids: dict[str, str] = {}
        self._customers = {
            s.customer_identifier: f"customer of {s.customer_aws_account_id}"
            for account in (BUYER, *THREAD_ACCOUNTS)
            for s in [handle.subscription(SAAS, account)]
        }

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if k in ("MeteringRecordId", "LicenseArn", "AgreementId") and isinstance(v, str):
                    out[k] = self._ids.setdefault(v, f"id{len(self._ids)}")
                elif k == "CustomerIdentifier":
                    out[k] = self._customers.get(v, v)
                else:
                    out[k] = self(v)
            return out
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return value


def clients_of_server(server: MarketmeterServer) -> Client:
    def make(service: str, who: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=KEYS[who][0],
            aws_secret_access_key=KEYS[who][1],
            config=Config(retries={"total_max_attempts": 1}),
        )

    return make


def clients_of_mock(service: str, who: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name="us-east-1",  # no endpoint_url: AWS's, answered in-process
        aws_access_key_id=KEYS[who][0],
        aws_secret_access_key=KEYS[who][1],
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.mark.timeout(120)
def test_the_mock_and_a_server_answer_alike(
    marketplace: MarketplaceHandle, marketmeter_server: MarketmeterServer
) -> None:
    assert marketmeter_server.handle is not None
    served = scenario(marketmeter_server.handle, clients_of_server(marketmeter_server))
    mocked = scenario(marketplace, clients_of_mock)
    served = Ids(marketmeter_server.handle)(served)
    mocked = Ids(marketplace)(mocked)
    assert mocked == served
    # …and they are the answers AWS gives (so that the equality is not of two blanks).
    statuses = [a["Results"][0]["Status"] for a in served[2:6] if a.get("Results")]
    assert statuses == ["Success", "Success", "DuplicateRecord", "CustomerNotSubscribed"]
    assert served[2] == served[3]  # the same record again: the same id
    assert served[6] == {"error": "TimestampOutOfBoundsException", "status": 400}
    assert served[7]["status"] == 400 and served[8]["error"] == "InvalidUsageDimensionException"
    assert served[9] == served[10] and served[11]["error"] == "DuplicateRequestException"
    assert served[12] == {"error": "DryRunOperation", "status": 412}
    assert served[13]["Entitlements"][0]["Value"] == {"IntegerValue": 12}
    for per_thread in served[14]:
        assert per_thread[0] == per_thread[1] == per_thread[2]
        assert [r["Status"] for r in per_thread[0]["Results"]] == ["Success", "Success"]
    assert served[15] == {"error": "ThrottlingException", "status": 400}
    assert served[16]["Results"][0]["Status"] == "Success"
    assert served[17]["Results"][0]["Status"] == "CustomerNotSubscribed"
    assert len(served[18]) == 2 + 1 + 2 * len(THREAD_ACCOUNTS)
    assert served[19]["total"] == str(5 + 1 + 5 * len(THREAD_ACCOUNTS))
