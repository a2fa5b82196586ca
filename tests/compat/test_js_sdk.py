"""A second, independent SDK: the AWS SDK for JavaScript v3 against a real server process.

`js/metering.mjs` makes every call with `@aws-sdk/client-marketplace-metering`, signed by
the SDK's own SigV4 signer; the tests here check what it reports against the records the
server stored. The SDK is installed on first use with `npm ci` from `js/package-lock.json`
into `js/node_modules` (git-ignored, kept between runs). Without `node` and `npm` the
tests are skipped; CI installs them.

The SDK is pinned to 3.956.0, the newest release whose `engines` still admit Node 18
(Debian 12's); later ones declare Node >= 20. One lockfile thus serves Node 18 to current
Node. No release up to 3.1138.0 models the 2026 members (`UsageQuantityAsDecimal`,
`QuantityAsDecimal`, `ResolveCustomer`'s `Metadata`), and 3.956.0 not `LicenseArn` either:
the script adds top-level input members its SDK dropped to the JSON body before the SDK
signs it, and reports the raw response body next to what the SDK parsed.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import Fresh, recent
from tests.compat.node import JS_DIR, Node
from tests.compat.server import (
    Server,
    iso,
    issue_token,
    millis,
    sdk_environment,
    verified_claims,
)
from tests.factories import AMI, CONTAINER, SAAS

SCRIPT = JS_DIR / "metering.mjs"

pytestmark = [pytest.mark.compat, pytest.mark.timeout(600)]  # a first `npm ci` may be slow


def run_script(node: Node, spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    done = subprocess.run(
        [node.executable, str(SCRIPT)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=JS_DIR,
        env=sdk_environment(tmp),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (
        f"node {SCRIPT.name} exited {done.returncode}\nstdout:\n{done.stdout}\n"
        f"stderr:\n{done.stderr}"
    )
    out: dict[str, Any] = json.loads(done.stdout)
    return out


@dataclass
class Scenario:
    """One run of metering.mjs: what was asked and what the SDK reported."""

    results: dict[str, Any]
    node: str
    sdk: str
    batch_times: list[datetime]
    batch_customers: list[tuple[str, str]]
    meter_time: datetime
    resolved: tuple[str, str]
    nonce: str
    stored_before: int
    stored_after: int


@pytest.fixture(scope="module")
def scenario(js_sdk: Node, server: Server, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    at = recent()
    batch_times = [at + timedelta(milliseconds=123), at + timedelta(milliseconds=456)]
    meter_time = at + timedelta(milliseconds=789)
    fresh: Fresh = server.fresh  # what the `fresh` fixture hands out, for a whole module
    batch_customers = [fresh.customer(), fresh.customer()]
    resolved = fresh.customer()
    meter_key, register_key = fresh.buyer_key(), fresh.buyer_key()
    token = issue_token(server, resolved[0])
    nonce = f"js-{uuid.uuid4()}"
    client_token = str(uuid.uuid4())

    def date(value: datetime) -> dict[str, int]:
        return {"$date": millis(value)}

    calls = [
        {
            "name": "batch",
            "credentials": "seller",
            "command": "BatchMeterUsage",
            "input": {
                "ProductCode": SAAS,
                "UsageRecords": [
                    {
                        "Timestamp": date(batch_times[0]),
                        "CustomerAWSAccountId": batch_customers[0][0],
                        "Dimension": "users",
                        "Quantity": 3,
                    },
                    {
                        "Timestamp": date(batch_times[1]),
                        "CustomerAWSAccountId": batch_customers[1][0],
                        "Dimension": "storage_gb",
                        "Quantity": 7,
                        "UsageAllocations": [
                            {"AllocatedUsageQuantity": 7, "Tags": [{"Key": "team", "Value": "js"}]}
                        ],
                    },
                ],
            },
        },
        {
            "name": "meter",
            "credentials": "meter",
            "command": "MeterUsage",
            "input": {
                "ProductCode": AMI,
                "Timestamp": date(meter_time),
                "UsageDimension": "gb",
                "UsageQuantityAsDecimal": "2.75",
                "ClientToken": client_token,
            },
        },
        {
            "name": "resolve",
            "credentials": "seller",
            "command": "ResolveCustomer",
            "input": {"RegistrationToken": token},
        },
        {
            "name": "register",
            "credentials": "register",
            "command": "RegisterUsage",
            "input": {"ProductCode": CONTAINER, "PublicKeyVersion": 1, "Nonce": nonce},
        },
        {
            "name": "unknown_dimension",
            "credentials": "meter",
            "command": "MeterUsage",
            "input": {
                "ProductCode": AMI,
                "Timestamp": date(meter_time),
                "UsageDimension": "no_such_dimension",
                "UsageQuantity": 1,
            },
        },
        {
            "name": "client_token_conflict",
            "credentials": "meter",
            "command": "MeterUsage",
            "input": {
                "ProductCode": AMI,
                "Timestamp": date(meter_time),
                "UsageDimension": "vcpu_hours",
                "UsageQuantity": 1,
                "ClientToken": client_token,
            },
        },
    ]

    def credentials(key: str) -> dict[str, str]:
        key_id, secret, _ = server.keys[key]
        return {"accessKeyId": key_id, "secretAccessKey": secret}

    spec = {
        "endpoint": server.url,
        "region": "us-east-1",
        "credentials": {
            "seller": credentials("seller"),
            "meter": credentials(meter_key),
            "register": credentials(register_key),
        },
        "calls": calls,
    }
    before = server.record_count()
    out = run_script(js_sdk, spec, tmp_path_factory.mktemp("js-sdk"))
    return Scenario(
        results=out["results"],
        node=out["node"],
        sdk=out["sdk"],
        batch_times=batch_times,
        batch_customers=batch_customers,
        meter_time=meter_time,
        resolved=resolved,
        nonce=nonce,
        stored_before=before,
        stored_after=server.record_count(),
    )


def succeeded(scenario: Scenario, name: str) -> dict[str, Any]:
    result: dict[str, Any] = scenario.results[name]
    assert result["ok"], f"{name} failed with the JS SDK {scenario.sdk}: {result}"
    assert result["status"] == 200
    return result


def stored(server: Server, product: str) -> dict[str, dict[str, Any]]:
    return {r["MeteringRecordId"]: r for r in server.records(product)}


def test_batch_meter_usage_signed_by_the_js_sdk_is_stored(
    scenario: Scenario, server: Server
) -> None:
    batch = succeeded(scenario, "batch")
    out = batch["output"]
    assert out["UnprocessedRecords"] == []
    assert [r["Status"] for r in out["Results"]] == ["Success", "Success"]
    rows = stored(server, SAAS)
    sent = [
        ("users", 3, None),
        (
            "storage_gb",
            7,
            [{"AllocatedUsageQuantity": 7, "Tags": [{"Key": "team", "Value": "js"}]}],
        ),
    ]
    for result, (account, identifier), (dimension, quantity, allocations) in zip(
        out["Results"], scenario.batch_customers, sent, strict=True
    ):
        row = rows[result["MeteringRecordId"]]
        assert row["CustomerAWSAccountId"] == account
        assert row["CustomerIdentifier"] == identifier
        assert (row["Dimension"], row["Quantity"]) == (dimension, quantity)
        assert row.get("UsageAllocations") == allocations
    assert batch["injected"] == []


def test_fractional_timestamps_keep_the_milliseconds_the_js_sdk_sent(
    scenario: Scenario, server: Server
) -> None:
    """The SDK sends `Date.getTime() / 1000`; the server stores and echoes milliseconds."""
    out = succeeded(scenario, "batch")
    rows = stored(server, SAAS)
    for result, raw, at in zip(
        out["output"]["Results"], out["raw"]["Results"], scenario.batch_times, strict=True
    ):
        assert rows[result["MeteringRecordId"]]["Timestamp"] == iso(at)
        assert raw["UsageRecord"]["Timestamp"] == millis(at) / 1000  # a fractional number
        assert result["UsageRecord"]["Timestamp"] == iso(at)  # parsed back into a Date
    meter = succeeded(scenario, "meter")
    assert stored(server, AMI)[meter["output"]["MeteringRecordId"]]["Timestamp"] == iso(
        scenario.meter_time
    )


def test_meter_usage_with_usage_quantity_as_decimal(scenario: Scenario, server: Server) -> None:
    meter = succeeded(scenario, "meter")
    assert set(meter["output"]) == {"MeteringRecordId"}
    # Either the SDK models the member, or only that member had to be added for it.
    assert set(meter["injected"]) <= {"UsageQuantityAsDecimal"}
    row = stored(server, AMI)[meter["output"]["MeteringRecordId"]]
    assert row["Operation"] == "MeterUsage"
    assert (row["Dimension"], row["QuantityAsDecimal"], row["Quantity"]) == ("gb", "2.75", 2.75)


def test_resolve_customer_reports_the_agreement(scenario: Scenario) -> None:
    resolve = succeeded(scenario, "resolve")
    account, identifier = scenario.resolved
    assert resolve["output"]["CustomerIdentifier"] == identifier
    assert resolve["output"]["CustomerAWSAccountId"] == account
    assert resolve["output"]["ProductCode"] == SAAS
    raw = resolve["raw"]  # LicenseArn and Metadata are newer than the SDK's model
    assert raw["LicenseArn"].startswith(f"arn:aws:license-manager::{account}:license:l-")
    assert raw["Metadata"]["AgreementId"].startswith("agmt-")


def test_register_usage_signature_verifies_with_the_published_key(
    scenario: Scenario, server: Server
) -> None:
    register = succeeded(scenario, "register")
    assert set(register["output"]) == {"Signature"}
    claims = verified_claims(server, register["output"]["Signature"], CONTAINER)
    assert claims["productCode"] == CONTAINER
    assert claims["publicKeyVersion"] == 1
    assert claims["nonce"] == scenario.nonce


def test_an_unknown_dimension_is_an_error_the_js_sdk_recognises(scenario: Scenario) -> None:
    error = scenario.results["unknown_dimension"]
    assert error["ok"] is False
    assert error["name"] == "InvalidUsageDimensionException"  # the SDK's own error class
    assert error["status"] == 400
    assert error["fault"] == "client"
    assert "no_such_dimension" in error["message"]
    assert error["raw"]["__type"] == "InvalidUsageDimensionException"


def test_a_reused_client_token_is_an_idempotency_conflict(scenario: Scenario) -> None:
    error = scenario.results["client_token_conflict"]
    assert error["ok"] is False
    assert error["name"] == "IdempotencyConflictException"
    assert error["fault"] == "client"
    # The service's Smithy model (which the JS SDK is generated from) says @httpError(409).
    assert error["status"] == 409


def test_only_the_successful_calls_stored_records(scenario: Scenario) -> None:
    # Two batch records and one MeterUsage; ResolveCustomer, RegisterUsage and the two
    # failed calls store nothing.
    assert scenario.stored_after - scenario.stored_before == 3


def test_the_run_used_the_pinned_sdk(scenario: Scenario) -> None:
    lock = json.loads((JS_DIR / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/@aws-sdk/client-marketplace-metering"]["version"]
    assert scenario.sdk == pinned
    assert scenario.node.startswith("v")
