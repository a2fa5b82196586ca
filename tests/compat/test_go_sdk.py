"""The AWS SDK for Go, v1 and v2, against a real server process.

Both SDKs come as Debian packages (`golang-github-aws-aws-sdk-go-dev` 1.44.133,
`golang-github-aws-aws-sdk-go-v2-dev` 1.17.1 with service/marketplacemetering 1.13.21 and
smithy-go 1.13.3) and build offline in GOPATH mode. `go/common.go` plus one SDK's program
(`go/v1.go`, `go/v2.go`) are built into the test's temporary directory; Go's build cache is
kept in `.cache/go-build` (git-ignored), so a run after the first adds seconds.

Both SDKs predate the 2026 members of the API (`CustomerAWSAccountId`, decimal
quantities, `Metadata`), so they name customers by `CustomerIdentifier` and ignore what
they do not model, as old SDKs in the field do.

v2 before January 2025 closes the request body as soon as a response's headers arrive,
and loses the answer when the body comes in a later TCP segment (aws/aws-sdk-go-v2 #1825,
#2737): the burst below, with the SDK's retries off, must lose no answer — the server
writes each response in one piece (`marketmeter.server.one_write`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import Fresh, new_database, recent, start_server
from tests.compat.server import (
    Server,
    iso,
    issue_token,
    millis,
    sdk_environment,
    verified_claims,
)
from tests.factories import AMI, CONTAINER, SAAS

pytestmark = [pytest.mark.compat, pytest.mark.timeout(600)]

GO_DIR = Path(__file__).parent / "go"
GO_CACHE = Path(__file__).parents[2] / ".cache" / "go-build"
GOPATH = Path("/usr/share/gocode")  # where Debian installs Go libraries
SDK_PACKAGES = {
    "v1": ("github.com/aws/aws-sdk-go", "golang-github-aws-aws-sdk-go-dev", "1.44.133"),
    "v2": ("github.com/aws/aws-sdk-go-v2", "golang-github-aws-aws-sdk-go-v2-dev", "1.17.1"),
}
GO_ERROR_TYPES = {"v1": "*marketplacemetering.{}", "v2": "*types.{}"}
BURST_CALLS = 8000


@dataclass(frozen=True)
class GoProgram:
    sdk: str  # "v1" or "v2"
    executable: Path

    def run(self, spec: dict[str, Any], tmp: Path, timeout: int = 300) -> dict[str, Any]:
        done = subprocess.run(
            [str(self.executable)],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            env=sdk_environment(tmp),
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, (
            f"{self.executable.name} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
        report: dict[str, Any] = json.loads(done.stdout)
        return report


def build(sdk: str, directory: Path) -> GoProgram:
    go = shutil.which("go")
    package, debian, _ = SDK_PACKAGES[sdk]
    if go is None or not (GOPATH / "src" / package).is_dir():
        pytest.skip(
            f"Go or the AWS SDK for Go {sdk} is not installed (apt-get install golang-go "
            f"{debian}; `make test` does it): the Go SDK tests need them"
        )
    source = directory / f"src-{sdk}"
    source.mkdir()
    shutil.copy(GO_DIR / "common.go", source)
    shutil.copy(GO_DIR / f"{sdk}.go", source)
    GO_CACHE.mkdir(parents=True, exist_ok=True)
    executable = directory / f"metering-go-{sdk}"
    env = {
        **os.environ,
        "GO111MODULE": "off",  # GOPATH mode: the Debian packages, nothing downloaded
        "GOPATH": str(GOPATH),
        "GOCACHE": str(GO_CACHE),
        "GOFLAGS": "",
        "CGO_ENABLED": "0",
    }
    done = subprocess.run(
        [go, "build", "-o", str(executable), "."],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, f"go build ({sdk}) failed:\n{done.stdout}\n{done.stderr}"
    return GoProgram(sdk, executable)


@pytest.fixture(scope="session", params=["v1", "v2"])
def go_sdk(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> GoProgram:
    return build(str(request.param), tmp_path_factory.mktemp(f"go-{request.param}"))


@pytest.fixture(scope="session")
def go_v2(tmp_path_factory: pytest.TempPathFactory) -> GoProgram:
    return build("v2", tmp_path_factory.mktemp("go-v2-burst"))


def credentials(server: Server, key: str, secret: str | None = None) -> dict[str, str]:
    key_id, real_secret, _ = server.keys[key]
    return {"id": key_id, "secret": secret or real_secret}


# -- every operation ------------------------------------------------------------------------


@dataclass
class Scenario:
    report: dict[str, Any]
    sdk: str
    batch_times: list[datetime]
    batch_customers: list[tuple[str, str]]
    meter_time: datetime
    resolved: tuple[str, str]
    nonce: str
    stored_before: int
    stored_after: int

    def ok(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.report["results"][name]
        assert result["ok"], f"{name} failed with the Go SDK {self.sdk}: {result}"
        assert result["status"] == 200
        output: dict[str, Any] = result["output"]
        return output

    def error(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.report["results"][name]
        assert not result["ok"], f"{name} succeeded with the Go SDK {self.sdk}"
        assert not result["lost"], f"{name}: the Go SDK {self.sdk} lost the answer: {result}"
        return result


@pytest.fixture(scope="module")
def scenario(
    go_sdk: GoProgram, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Scenario:
    at = recent()
    batch_times = [at + timedelta(milliseconds=125), at + timedelta(milliseconds=250)]
    meter_time = at + timedelta(milliseconds=375)
    fresh: Fresh = server.fresh
    batch_customers = [fresh.customer(), fresh.customer()]
    resolved = fresh.customer()
    nonce = f"go-{go_sdk.sdk}-{uuid.uuid4()}"
    meter = {
        "credentials": "meter",
        "operation": "MeterUsage",
        "product_code": AMI,
        "timestamp_ms": millis(meter_time),
    }
    calls = [
        {
            "name": "batch",
            "credentials": "seller",
            "operation": "BatchMeterUsage",
            "product_code": SAAS,
            "records": [
                {
                    "customer_identifier": batch_customers[0][1],
                    "dimension": "users",
                    "quantity": 3,
                    "timestamp_ms": millis(batch_times[0]),
                },
                {
                    "customer_identifier": batch_customers[1][1],
                    "dimension": "storage_gb",
                    "quantity": 7,
                    "timestamp_ms": millis(batch_times[1]),
                    "allocations": [
                        {"quantity": 5, "tags": [{"key": "team", "value": "go"}]},
                        {"quantity": 2},
                    ],
                },
            ],
        },
        {"name": "meter", **meter, "dimension": "vcpu_hours", "quantity": 4},
        {"name": "meter_again", **meter, "dimension": "vcpu_hours", "quantity": 4},
        {"name": "duplicate", **meter, "dimension": "vcpu_hours", "quantity": 5},
        {"name": "dry_run", **meter, "dimension": "gb", "quantity": 1, "dry_run": True},
        {"name": "unknown_dimension", **meter, "dimension": "no_such_dimension", "quantity": 1},
        {
            "name": "resolve",
            "credentials": "seller",
            "operation": "ResolveCustomer",
            "token": issue_token(server, resolved[0]),
        },
        {
            "name": "register",
            "credentials": "register",
            "operation": "RegisterUsage",
            "product_code": CONTAINER,
            "key_version": 1,
            "nonce": nonce,
        },
        {
            "name": "unknown_key_version",
            "credentials": "register",
            "operation": "RegisterUsage",
            "product_code": CONTAINER,
            "key_version": 99,
            "nonce": nonce,
        },
        {
            "name": "wrong_secret",
            "credentials": "wrong_secret",
            "operation": "ResolveCustomer",
            "token": "whatever",
        },
        {
            "name": "unknown_key",
            "credentials": "unknown_key",
            "operation": "ResolveCustomer",
            "token": "whatever",
        },
    ]
    spec = {
        "endpoint": server.url,
        "region": "us-east-1",
        "credentials": {
            "seller": credentials(server, "seller"),
            "meter": credentials(server, fresh.buyer_key()),
            "register": credentials(server, fresh.buyer_key()),
            "wrong_secret": credentials(server, "seller", secret="not-the-secret-0000000000"),
            "unknown_key": {"id": "AKIANOSUCHKEY0000001", "secret": "x" * 40},
        },
        "calls": calls,
    }
    before = server.record_count()
    report = go_sdk.run(spec, tmp_path_factory.mktemp("go-run"))
    return Scenario(
        report=report,
        sdk=go_sdk.sdk,
        batch_times=batch_times,
        batch_customers=batch_customers,
        meter_time=meter_time,
        resolved=resolved,
        nonce=nonce,
        stored_before=before,
        stored_after=server.record_count(),
    )


def stored(server: Server, product: str) -> dict[str, dict[str, Any]]:
    return {r["MeteringRecordId"]: r for r in server.records(product)}


def test_the_run_used_the_debian_sdk(scenario: Scenario) -> None:
    _, _, version = SDK_PACKAGES[scenario.sdk]
    assert scenario.report["version"] == version
    assert scenario.report["sdk"] == {"v1": "aws-sdk-go", "v2": "aws-sdk-go-v2"}[scenario.sdk]


def test_batch_meter_usage_from_go_is_stored(scenario: Scenario, server: Server) -> None:
    out = scenario.ok("batch")
    assert out["unprocessed"] == 0
    rows = stored(server, SAAS)
    expected = [
        ("users", 3, None),
        (
            "storage_gb",
            7,
            [
                {"AllocatedUsageQuantity": 5, "Tags": [{"Key": "team", "Value": "go"}]},
                {"AllocatedUsageQuantity": 2},
            ],
        ),
    ]
    for result, (account, identifier), at, (dimension, quantity, allocations) in zip(
        out["results"], scenario.batch_customers, scenario.batch_times, expected, strict=True
    ):
        assert result["status"] == "Success"
        assert result["customer_identifier"] == identifier
        row = rows[result["metering_record_id"]]
        assert (row["CustomerIdentifier"], row["CustomerAWSAccountId"]) == (identifier, account)
        assert (row["Dimension"], row["Quantity"]) == (dimension, quantity)
        assert row.get("UsageAllocations") == allocations
        # The SDK sends a numeric timestamp with milliseconds; both ways keep them.
        assert row["Timestamp"] == iso(at)
        assert result["timestamp_ms"] == millis(at)


def test_meter_usage_from_go_is_stored_once(scenario: Scenario, server: Server) -> None:
    first = scenario.ok("meter")["metering_record_id"]
    assert scenario.ok("meter_again")["metering_record_id"] == first
    row = stored(server, AMI)[first]
    assert (row["Operation"], row["Dimension"], row["Quantity"]) == ("MeterUsage", "vcpu_hours", 4)
    assert row["Timestamp"] == iso(scenario.meter_time)


def test_a_changed_quantity_is_the_sdks_typed_duplicate_request_error(scenario: Scenario) -> None:
    error = scenario.error("duplicate")
    assert error["code"] == "DuplicateRequestException"
    assert error["go_type"] == GO_ERROR_TYPES[scenario.sdk].format("DuplicateRequestException")
    assert error["status"] == 400


def test_dry_run_answers_dry_run_operation(scenario: Scenario) -> None:
    """Newer than these SDKs' models: they see a generic API error with its code."""
    error = scenario.error("dry_run")
    assert (error["code"], error["status"]) == ("DryRunOperation", 412)


def test_an_unknown_dimension_is_the_sdks_typed_error(scenario: Scenario) -> None:
    error = scenario.error("unknown_dimension")
    assert error["code"] == "InvalidUsageDimensionException"
    assert error["go_type"] == GO_ERROR_TYPES[scenario.sdk].format("InvalidUsageDimensionException")
    assert "no_such_dimension" in error["message"]


def test_resolve_customer_from_go(scenario: Scenario) -> None:
    out = scenario.ok("resolve")
    account, identifier = scenario.resolved
    assert out == {
        "customer_identifier": identifier,
        "customer_aws_account_id": account,
        "product_code": SAAS,
    }


def test_register_usage_signature_from_go_verifies(scenario: Scenario, server: Server) -> None:
    out = scenario.ok("register")
    claims = verified_claims(server, out["signature"], CONTAINER)
    assert (claims["productCode"], claims["publicKeyVersion"], claims["nonce"]) == (
        CONTAINER,
        1,
        scenario.nonce,
    )
    error = scenario.error("unknown_key_version")
    assert error["code"] == "InvalidPublicKeyVersionException"
    assert error["go_type"] == GO_ERROR_TYPES[scenario.sdk].format(
        "InvalidPublicKeyVersionException"
    )


def test_authentication_errors_reach_go_as_400s(scenario: Scenario) -> None:
    wrong = scenario.error("wrong_secret")
    assert (wrong["code"], wrong["status"]) == ("InvalidSignatureException", 400)
    unknown = scenario.error("unknown_key")
    assert (unknown["code"], unknown["status"]) == ("UnrecognizedClientException", 400)


def test_only_the_successful_calls_from_go_stored_records(scenario: Scenario) -> None:
    assert scenario.stored_after - scenario.stored_before == 3  # two batch records, one meter


# -- the burst: no answer lost --------------------------------------------------------------


def burst_spec(server: Server, calls: int, concurrency: int) -> dict[str, Any]:
    """Four calls repeated round-robin: two answered 200 that store once (retries of a
    batch and of a MeterUsage), a 400 (a changed quantity), and a ResolveCustomer."""
    fresh: Fresh = server.fresh
    at = millis(recent())
    _, identifier = fresh.customer()
    resolved_account, _ = fresh.customer()
    meter = {
        "credentials": "meter",
        "operation": "MeterUsage",
        "product_code": AMI,
        "timestamp_ms": at,
        "dimension": "vcpu_hours",
    }
    mix = [
        {
            "name": "batch",
            "credentials": "seller",
            "operation": "BatchMeterUsage",
            "product_code": SAAS,
            "records": [
                {
                    "customer_identifier": identifier,
                    "dimension": "users",
                    "quantity": 2,
                    "timestamp_ms": at,
                }
            ],
        },
        {"name": "meter", **meter, "quantity": 1},
        {"name": "duplicate", **meter, "quantity": 2},
        {
            "name": "resolve",
            "credentials": "seller",
            "operation": "ResolveCustomer",
            "token": issue_token(server, resolved_account),
        },
    ]
    return {
        "endpoint": server.url,
        "region": "us-east-1",
        "credentials": {
            "seller": credentials(server, "seller"),
            "meter": credentials(server, fresh.buyer_key()),
        },
        "calls": mix,  # each once first, so that every repeat has one expected answer
        "burst": {"calls": calls, "concurrency": concurrency, "mix": [c["name"] for c in mix]},
    }


def assert_nothing_lost(report: dict[str, Any], calls: int) -> None:
    burst = report["burst"]
    lost = sum(t["lost"] for t in burst["by_call"].values())
    assert lost == 0, f"{lost} of {calls} answers lost: {burst['lost_examples']}"
    each = calls // 4
    assert burst["by_call"]["batch"] == {"ok": each, "errors": {}, "lost": 0}
    assert burst["by_call"]["meter"] == {"ok": each, "errors": {}, "lost": 0}
    assert burst["by_call"]["duplicate"] == {
        "ok": 0,
        "errors": {"DuplicateRequestException": each},
        "lost": 0,
    }
    assert burst["by_call"]["resolve"] == {"ok": each, "errors": {}, "lost": 0}


@pytest.fixture(scope="module")
def two_worker_server(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"server-2w-{store_kind}")
    srv = start_server(new_database(request, store_kind, directory), directory, "--workers", "2")
    yield srv
    srv.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_go_v2_burst_loses_no_answer(
    go_v2: GoProgram,
    workers: int,
    store_kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """One call at a time, where the SDK's race showed most (1 to 12 in 8,000 with two
    writes per response), with its retries off, on each store."""
    assert store_kind in ("sqlite", "postgresql")
    server: Server = request.getfixturevalue("server" if workers == 1 else "two_worker_server")
    before = server.record_count()
    report = go_v2.run(burst_spec(server, BURST_CALLS, concurrency=1), tmp_path)
    assert_nothing_lost(report, BURST_CALLS)
    assert server.record_count() - before == 2  # the batch's record and the MeterUsage


def test_concurrent_calls_from_either_sdk_lose_no_answer(
    go_sdk: GoProgram, server: Server, tmp_path: Path
) -> None:
    calls = 2000
    report = go_sdk.run(burst_spec(server, calls, concurrency=4), tmp_path)
    assert_nothing_lost(report, calls)
