"""The testing kit's costs, each against a baseline measured in the same run:

- activating and deactivating `mock_marketplace` (warm: its template made) against moto's
  `mock_aws` doing the same;
- a boto3 BatchMeterUsage answered by the mock against the same call answered with the
  same answer by a canned `before-send` handler (botocore's own work: the floor), and
  against moto's fake;
- `MarketmeterServer.reset()` on SQLite against one empty write transaction on the same
  file (the floor of any reset).

Run alone: `python bench/testing_kit.py`.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import Ratio  # noqa: E402

CATALOG = {
    "accounts": [{"account_id": "111122223333"}],
    "products": [
        {"product_code": "kitbench", "seller_account_id": "111122223333", "dimensions": ["u"]}
    ],
    "subscriptions": [{"product_code": "kitbench", "customer_aws_account_id": "444455556666"}],
}
KEYS = {"aws_access_key_id": "AKIABENCHKIT00000001", "aws_secret_access_key": "x" * 40}


def median_ms(action: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def per_call_ms(action: Callable[[int], Any], calls: int) -> float:
    started = time.perf_counter()
    for i in range(calls):
        action(i)
    return (time.perf_counter() - started) * 1000 / calls


def records(i: int, customer: str = "CustomerAWSAccountId") -> list[dict[str, Any]]:
    """One record (moto knows only `CustomerIdentifier`)."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    value = "444455556666" if customer == "CustomerAWSAccountId" else "cust1"
    return [{"Timestamp": hour, customer: value, "Dimension": "u", "Quantity": i}]


def activation(rounds: int = 40) -> list[Ratio]:
    from moto import mock_aws

    from marketmeter.testing import mock_marketplace

    def ours() -> None:
        with mock_marketplace(CATALOG):
            pass

    def moto() -> None:
        with mock_aws():
            pass

    ours()  # the template, made once per process and catalog
    moto()
    mock_ms, moto_ms = median_ms(ours, rounds), median_ms(moto, rounds)
    print(f"· mock_marketplace start+stop {mock_ms:.1f} ms; moto mock_aws {moto_ms:.1f} ms")
    return [
        Ratio("mock_marketplace start+stop, ms (median)", mock_ms, "≤ 50", mock_ms <= 50),
        Ratio(
            "mock_marketplace start+stop ÷ moto mock_aws start+stop", mock_ms / moto_ms, "", None
        ),
    ]


def calls(count: int = 300, rounds: int = 7) -> list[Ratio]:
    """Rounds alternate between the mock and the floor (medians of the rounds): this
    machine's speed drifts within a run."""
    import boto3
    from botocore.awsrequest import AWSResponse, HeadersDict
    from moto import mock_aws

    from marketmeter.testing import mock_marketplace

    hour = records(0)[0]["Timestamp"].timestamp()
    answer = orjson.dumps(  # what the mock answers, so that botocore parses the same
        {
            "Results": [
                {
                    "UsageRecord": {
                        "Timestamp": hour,
                        "CustomerAWSAccountId": "444455556666",
                        "Dimension": "u",
                        "Quantity": 1,
                    },
                    "MeteringRecordId": "6d5ae1f8-54b2-4b6c-9d37-0c8f5d1e2a11",
                    "Status": "Success",
                }
            ],
            "UnprocessedRecords": [],
        }
    )

    class Raw:
        def stream(self, **_: Any) -> Any:
            yield answer

    def canned(request: Any, **_: Any) -> AWSResponse:
        headers = HeadersDict({"content-type": "application/x-amz-json-1.1"})
        return AWSResponse(request.url, 200, headers, Raw())

    floor_client = boto3.client("meteringmarketplace", region_name="us-east-1", **KEYS)
    floor_client.meta.events.register_first("before-send", canned)
    client = boto3.client("meteringmarketplace", region_name="us-east-1", **KEYS)
    moto_client = boto3.client("meteringmarketplace", region_name="us-east-1", **KEYS)
    moto_records = records(0, "CustomerIdentifier")

    def floor(i: int) -> None:
        floor_client.batch_meter_usage(ProductCode="kitbench", UsageRecords=records(i))

    def ours(i: int) -> None:
        out = client.batch_meter_usage(ProductCode="kitbench", UsageRecords=records(i))
        assert out["Results"][0]["Status"] in ("Success", "DuplicateRecord")

    def moto(i: int) -> None:
        moto_client.batch_meter_usage(ProductCode="kitbench", UsageRecords=moto_records)

    mock_runs, floor_runs, moto_runs = [], [], []
    for _ in range(rounds):
        with mock_marketplace(CATALOG):
            ours(0)
            mock_runs.append(per_call_ms(ours, count))
        # With no mock active (else the mock's hook, registered first, would answer).
        floor_runs.append(per_call_ms(floor, count))
        with mock_aws():
            moto_runs.append(per_call_ms(moto, count))
    mock_ms, floor_ms, moto_ms = (statistics.median(r) for r in (mock_runs, floor_runs, moto_runs))
    added = mock_ms - floor_ms
    print(
        f"· a call: mock {mock_ms:.3f} ms, botocore alone {floor_ms:.3f} ms (mock adds "
        f"{added:.3f} ms), moto {moto_ms:.3f} ms"
    )
    return [
        Ratio("mock call, ms added to botocore's own work", added, "≤ 0.5", added <= 0.5),
        Ratio(
            "mock call ÷ the same call answered by a canned handler", mock_ms / floor_ms, "", None
        ),
        Ratio("mock call ÷ moto's call", mock_ms / moto_ms, "", None),
    ]


def server_reset(rounds: int = 30) -> list[Ratio]:
    import sqlite3

    from marketmeter.testing.server import MarketmeterServer

    with MarketmeterServer(CATALOG) as server:
        assert server.handle is not None
        handle = server.handle

        def reset() -> None:
            handle.subscribe("kitbench", "777788889999")
            server.reset()

        reset_ms = median_ms(reset, rounds) - median_ms(
            lambda: handle.subscribe("kitbench", "777788889999"), rounds
        )
        path = server.database_url.removeprefix("sqlite:///")

        def empty_transaction() -> None:
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("COMMIT")
            conn.close()

        floor_ms = median_ms(empty_transaction, rounds)
    print(f"· server reset {reset_ms:.1f} ms; an empty SQLite transaction {floor_ms:.2f} ms")
    return [
        Ratio("marketmeter_server reset, ms (median)", reset_ms, "≤ 50", reset_ms <= 50),
        Ratio("server reset ÷ an empty write transaction", reset_ms / floor_ms, "", None),
    ]


def testing_kit_timings() -> list[Ratio]:
    return activation() + calls() + server_reset()


if __name__ == "__main__":
    for ratio in testing_kit_timings():
        print(ratio.row())
