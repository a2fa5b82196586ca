"""The real AWS CLI (`aws meteringmarketplace …`, v1) against a real server process.

The CLI runs as a subprocess with `--endpoint-url`, credentials in its environment and no
config or credentials file of its own, so nothing on the machine leaks in.

Two facts about awscli v1 shape these tests:

- It bundles its own botocore (awscli 1.46.3 ships botocore 1.43.62), whose Metering model
  predates `QuantityAsDecimal`/`UsageQuantityAsDecimal` and `ResolveCustomer`'s `Metadata`:
  the CLI refuses those members before sending anything ("Unknown parameter"). When it
  does, the tests hand the CLI the model of the installed botocore, the one marketmeter
  serves, through `AWS_DATA_PATH`, as a user would to use a newer model with an older CLI.
- It sends every timestamp as whole epoch seconds: an ISO 8601 string with milliseconds,
  an ISO 8601 string with an offset, epoch seconds as a string or a number, fractional or
  not, all arrive as an integer number of seconds, so stored times end in `.000Z`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jwt
import pytest
from botocore.session import get_session

from tests.compat.conftest import Fresh, recent
from tests.compat.server import (
    Server,
    iso,
    issue_token,
    sdk_environment,
    verified_claims,
)
from tests.factories import AMI, CONTAINER, SAAS

pytestmark = pytest.mark.compat

AWS = Path(sys.executable).parent / "aws"
SERVICE = "meteringmarketplace"
CLI_EXIT_ERROR = 255  # awscli v1: the service (or the CLI itself) refused the command


def epoch(at: datetime) -> int:
    return int(at.timestamp())


@dataclass
class Cli:
    server: Server
    env: dict[str, str]

    def run(self, key: str, operation: str, *args: str) -> subprocess.CompletedProcess[str]:
        key_id, secret, _ = self.server.keys[key]
        return subprocess.run(
            [
                str(AWS),
                SERVICE,
                operation,
                "--endpoint-url",
                self.server.url,
                "--output",
                "json",
                *args,
            ],
            capture_output=True,
            text=True,
            env={**self.env, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret},
            timeout=60,
            check=False,
        )

    def ok(self, key: str, operation: str, *args: str) -> dict[str, Any]:
        done = self.run(key, operation, *args)
        assert done.returncode == 0, f"aws {operation} exited {done.returncode}:\n{done.stderr}"
        out: dict[str, Any] = json.loads(done.stdout)
        return out

    def fails(self, code: str, key: str, operation: str, *args: str) -> str:
        """Run a command that the service must refuse with `code`, storing nothing."""
        before = self.server.record_count()
        done = self.run(key, operation, *args)
        assert done.returncode == CLI_EXIT_ERROR, (done.returncode, done.stdout, done.stderr)
        assert done.stdout == ""
        assert f"({code})" in done.stderr, done.stderr
        assert self.server.record_count() == before, "a failed command stored records"
        return done.stderr


def base_env(tmp: Path) -> dict[str, str]:
    env = sdk_environment(tmp)
    env.update(
        {"AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}
    )
    return env


def skeleton(env: dict[str, str]) -> dict[str, Any]:
    """The CLI's own idea of MeterUsage's input members."""
    done = subprocess.run(
        [str(AWS), SERVICE, "meter-usage", "--generate-cli-skeleton", "input"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def with_current_model(env: dict[str, str], tmp: Path) -> dict[str, str]:
    """`env`, plus AWS_DATA_PATH to the installed botocore's model if the CLI's lacks
    the decimal quantities."""
    if "UsageQuantityAsDecimal" in skeleton(env):
        return env
    model = get_session().get_component("data_loader").load_service_model(SERVICE, "service-2")
    version = model["metadata"]["apiVersion"]
    target = tmp / "models" / SERVICE / version / "service-2.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(model))
    env = {**env, "AWS_DATA_PATH": str(tmp / "models")}
    assert "UsageQuantityAsDecimal" in skeleton(env), "AWS_DATA_PATH was not honoured"
    return env


@pytest.fixture(scope="module")
def cli(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    tmp = tmp_path_factory.mktemp("aws-cli")
    return Cli(server, with_current_model(base_env(tmp), tmp))


def stored(server: Server, product: str, record_id: str) -> dict[str, Any]:
    [row] = [r for r in server.records(product) if r["MeteringRecordId"] == record_id]
    return row


# -- BatchMeterUsage -------------------------------------------------------------------


def test_batch_meter_usage_stores_decimal_quantities_and_allocations(
    cli: Cli, server: Server, fresh: Fresh
) -> None:
    at = recent()
    (decimal_account, decimal_id), (whole_account, whole_id) = fresh.customer(), fresh.customer()
    allocations = [
        {"AllocatedUsageQuantityAsDecimal": "1.25", "Tags": [{"Key": "team", "Value": "cli"}]},
        {"AllocatedUsageQuantityAsDecimal": "2.5"},
    ]
    records = [
        {
            "Timestamp": iso(at),
            "CustomerAWSAccountId": decimal_account,
            "Dimension": "storage_gb",
            "QuantityAsDecimal": "3.75",
            "UsageAllocations": allocations,
        },
        {
            "Timestamp": iso(at),
            "CustomerAWSAccountId": whole_account,
            "Dimension": "users",
            "Quantity": 4,
        },
    ]
    out = cli.ok(
        "seller",
        "batch-meter-usage",
        "--product-code",
        SAAS,
        "--usage-records",
        json.dumps(records),
    )

    assert out["UnprocessedRecords"] == []
    assert [r["Status"] for r in out["Results"]] == ["Success", "Success"]
    echoed = [r["UsageRecord"] for r in out["Results"]]
    assert echoed[0]["QuantityAsDecimal"] == "3.75"
    assert echoed[0]["UsageAllocations"] == allocations
    assert echoed[1]["Quantity"] == 4
    assert [r["Timestamp"] for r in echoed] == [epoch(at), epoch(at)]

    decimal = stored(server, SAAS, out["Results"][0]["MeteringRecordId"])
    assert decimal["CustomerAWSAccountId"] == decimal_account
    assert decimal["CustomerIdentifier"] == decimal_id
    assert decimal["QuantityAsDecimal"] == "3.75"
    assert decimal["UsageAllocations"] == allocations
    assert decimal["Timestamp"] == iso(at)
    whole = stored(server, SAAS, out["Results"][1]["MeteringRecordId"])
    assert (whole["CustomerIdentifier"], whole["Dimension"], whole["Quantity"]) == (
        whole_id,
        "users",
        4,
    )


def test_every_timestamp_form_the_cli_takes_arrives_as_whole_seconds(
    cli: Cli, server: Server, fresh: Fresh
) -> None:
    at = recent()
    plus_two = timezone(timedelta(hours=2))
    forms: list[Any] = [
        (at + timedelta(milliseconds=250)).isoformat(timespec="milliseconds"),  # +00:00
        iso(at + timedelta(milliseconds=999)),  # …Z
        (at + timedelta(milliseconds=750)).astimezone(plus_two).isoformat(),  # +02:00
        str(epoch(at)),  # epoch seconds, a string
        epoch(at),  # epoch seconds, a JSON number
        epoch(at) + 0.5,  # fractional epoch seconds
    ]
    records = [
        {"Timestamp": form, "CustomerAWSAccountId": fresh.customer()[0], "Dimension": "users"}
        for form in forms
    ]
    out = cli.ok(
        "seller",
        "batch-meter-usage",
        "--product-code",
        SAAS,
        "--usage-records",
        json.dumps(records),
    )

    assert [r["Status"] for r in out["Results"]] == ["Success"] * len(forms)
    assert [r["UsageRecord"]["Timestamp"] for r in out["Results"]] == [epoch(at)] * len(forms)
    rows = {r["MeteringRecordId"]: r for r in server.records(SAAS)}
    assert [rows[r["MeteringRecordId"]]["Timestamp"] for r in out["Results"]] == [iso(at)] * len(
        forms
    )


def test_batch_meter_usage_with_an_unknown_product_code(cli: Cli, fresh: Fresh) -> None:
    records = [
        {
            "Timestamp": iso(recent()),
            "CustomerAWSAccountId": fresh.customer()[0],
            "Dimension": "users",
        }
    ]
    stderr = cli.fails(
        "InvalidProductCodeException",
        "seller",
        "batch-meter-usage",
        "--product-code",
        "unknownproduct",
        "--usage-records",
        json.dumps(records),
    )
    assert "when calling the BatchMeterUsage operation" in stderr


def test_26_records_pass_the_cli_and_fail_validation_on_the_server(cli: Cli, fresh: Fresh) -> None:
    # The CLI checks a list's minimum length, never its maximum: the server must refuse.
    account, _ = fresh.customer()
    records = [
        {"Timestamp": iso(recent()), "CustomerAWSAccountId": account, "Dimension": "users"}
    ] * 26
    stderr = cli.fails(
        "ValidationException",
        "seller",
        "batch-meter-usage",
        "--product-code",
        SAAS,
        "--usage-records",
        json.dumps(records),
    )
    assert "Member must have length less than or equal to 25" in stderr


# -- MeterUsage ------------------------------------------------------------------------


def test_meter_usage_with_a_decimal_quantity_from_a_buyer_key(
    cli: Cli, server: Server, fresh: Fresh
) -> None:
    at = recent()
    out = cli.ok(
        fresh.buyer_key(),
        "meter-usage",
        "--product-code",
        AMI,
        "--timestamp",
        iso(at),
        "--usage-dimension",
        "gb",
        "--usage-quantity-as-decimal",
        "2.125",
    )
    assert set(out) == {"MeteringRecordId"}
    row = stored(server, AMI, out["MeteringRecordId"])
    assert row["Operation"] == "MeterUsage"
    assert row["Dimension"] == "gb"
    assert row["QuantityAsDecimal"] == "2.125"
    assert row["Timestamp"] == iso(at)


def test_meter_usage_retried_with_another_quantity_is_a_duplicate_request(
    cli: Cli, fresh: Fresh
) -> None:
    key = fresh.buyer_key()
    at = recent()
    meter = ("meter-usage", "--product-code", AMI, "--timestamp", str(epoch(at)))
    meter += ("--usage-dimension", "vcpu_hours")
    first = cli.ok(key, *meter, "--usage-quantity", "1")
    assert cli.ok(key, *meter, "--usage-quantity", "1") == first  # a retry: the same id
    stderr = cli.fails("DuplicateRequestException", key, *meter, "--usage-quantity", "2")
    assert "when calling the MeterUsage operation" in stderr


# -- ResolveCustomer -------------------------------------------------------------------


def test_resolve_customer_with_a_registration_token(cli: Cli, server: Server, fresh: Fresh) -> None:
    account, identifier = fresh.customer()
    out = cli.ok("seller", "resolve-customer", "--registration-token", issue_token(server, account))
    assert out["CustomerIdentifier"] == identifier
    assert out["CustomerAWSAccountId"] == account
    assert out["ProductCode"] == SAAS
    assert out["LicenseArn"].startswith(f"arn:aws:license-manager::{account}:license:l-")
    assert out["Metadata"]["AgreementId"].startswith("agmt-")


def test_resolve_customer_with_a_garbage_token(cli: Cli) -> None:
    stderr = cli.fails(
        "InvalidTokenException", "seller", "resolve-customer", "--registration-token", "garbage"
    )
    assert "when calling the ResolveCustomer operation" in stderr


# -- RegisterUsage ---------------------------------------------------------------------


def test_register_usage_signature_verifies_with_the_published_key(
    cli: Cli, server: Server, fresh: Fresh
) -> None:
    before = server.record_count()
    out = cli.ok(
        fresh.buyer_key(),
        "register-usage",
        "--product-code",
        CONTAINER,
        "--public-key-version",
        "1",
        "--nonce",
        "cli-nonce-1",
    )
    assert set(out) == {"Signature"}  # no rotation yet: no PublicKeyRotationTimestamp
    claims = verified_claims(server, out["Signature"], CONTAINER)
    assert claims["productCode"] == CONTAINER
    assert claims["publicKeyVersion"] == 1
    assert claims["nonce"] == "cli-nonce-1"
    assert abs(claims["iat"] - datetime.now(UTC).timestamp()) < 120
    assert jwt.get_unverified_header(out["Signature"])["alg"] == "PS256"
    assert server.record_count() == before, "RegisterUsage stores no metering record"


def test_register_usage_with_a_key_version_that_does_not_exist(cli: Cli, fresh: Fresh) -> None:
    cli.fails(
        "InvalidPublicKeyVersionException",
        fresh.buyer_key(),
        "register-usage",
        "--product-code",
        CONTAINER,
        "--public-key-version",
        "99",
    )
