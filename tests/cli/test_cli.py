"""The marketmeter command, run in-process on real SQLite files."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from marketmeter.cli import main
from marketmeter.clock import SystemClock
from marketmeter.domain.service import MeteringService
from marketmeter.store.sqlite import SqliteStore
from tests.factories import AMI, BUYER, CONTAINER, SAAS, STRANGER, caller, make_catalog, record


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(make_catalog()))
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def applied(db: str, catalog_file: Path) -> str:
    result = run("catalog", "apply", "--database", db, str(catalog_file))
    assert result.exit_code == 0, result.output
    return db


def test_catalog_apply_reports_what_it_applied_and_is_idempotent(
    db: str, catalog_file: Path
) -> None:
    first = run("catalog", "apply", "--database", db, str(catalog_file))
    assert first.exit_code == 0
    assert "5 accounts, 6 access keys, 5 products, 7 subscriptions in " in first.output
    assert first.output.rstrip().endswith(" s")  # and how long it took
    assert run("catalog", "apply", "--database", db, str(catalog_file)).exit_code == 0


def test_catalog_apply_accepts_json(db: str, tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(make_catalog()))
    assert run("catalog", "apply", "--database", db, str(path)).exit_code == 0


def test_a_bad_catalog_is_a_clear_error_with_exit_code_1(db: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("products:\n  - product_code: x\n    type: desktop\n")
    result = CliRunner().invoke(main, ["catalog", "apply", "--database", db, str(path)])
    assert result.exit_code == 1
    assert "products[0].type: one of saas, ami, container" in result.output
    assert "Traceback" not in result.output


def test_broken_yaml_is_a_clear_error(db: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("accounts: [\n")
    result = CliRunner().invoke(main, ["catalog", "apply", "--database", db, str(path)])
    assert result.exit_code == 1
    assert "not valid YAML or JSON" in result.output


def test_the_database_url_comes_from_the_environment(tmp_path: Path, catalog_file: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    result = CliRunner(env={"MARKETMETER_DATABASE_URL": url}).invoke(
        main, ["catalog", "apply", str(catalog_file)]
    )
    assert result.exit_code == 0
    assert (tmp_path / "env.db").exists()


def test_an_unsupported_database_url_is_refused(tmp_path: Path, catalog_file: Path) -> None:
    result = CliRunner().invoke(
        main, ["catalog", "apply", "--database", "mysql://x", str(catalog_file)]
    )
    assert result.exit_code == 1
    assert "unsupported database URL" in result.output


def test_token_issue_prints_the_token_alone_on_the_last_line(db: str, catalog_file: Path) -> None:
    applied(db, catalog_file)
    result = run("token", "issue", "--database", db, "--product", SAAS, "--customer-account", BUYER)
    assert result.exit_code == 0
    token = result.output.splitlines()[-1]
    assert len(token) == 176 and " " not in token
    store = SqliteStore(db.removeprefix("sqlite:///"))
    issued = store.get_registration_token(token)
    assert issued is not None
    assert issued.expires_at - issued.issued_at == timedelta(hours=4)
    store.close()


def test_token_issue_with_expiry(db: str, catalog_file: Path) -> None:
    applied(db, catalog_file)
    result = run(
        "token",
        "issue",
        "--database",
        db,
        "--product",
        SAAS,
        "--customer-account",
        BUYER,
        "--expires-in",
        "60",
    )
    store = SqliteStore(db.removeprefix("sqlite:///"))
    issued = store.get_registration_token(result.output.splitlines()[-1])
    assert issued is not None and issued.expires_at - issued.issued_at == timedelta(seconds=60)
    store.close()


def test_token_issue_without_subscription_fails_with_exit_code_1(
    db: str, catalog_file: Path
) -> None:
    applied(db, catalog_file)
    result = CliRunner().invoke(
        main,
        ["token", "issue", "--database", db, "--product", SAAS, "--customer-account", STRANGER],
    )
    assert result.exit_code == 1
    assert "has no subscription" in result.output


def _service(db: str) -> MeteringService:
    return MeteringService(SqliteStore(db.removeprefix("sqlite:///")), SystemClock())


def test_subscription_cancel_stops_usage(db: str, catalog_file: Path) -> None:
    applied(db, catalog_file)
    result = run(
        "subscription", "cancel", "--database", db, "--product", SAAS, "--customer-account", BUYER
    )
    assert result.exit_code == 0
    assert "cancelled arn:aws:license-manager::" in result.output
    service = _service(db)
    now = datetime.now(UTC)
    out = service.batch_meter_usage(caller("seller"), SAAS, [record(now)])
    assert out.results[0].status == "CustomerNotSubscribed"
    service.store.close()


def test_subscription_cancel_of_nothing_is_an_error(db: str, catalog_file: Path) -> None:
    applied(db, catalog_file)
    result = CliRunner().invoke(
        main,
        [
            "subscription",
            "cancel",
            "--database",
            db,
            "--product",
            SAAS,
            "--customer-account",
            STRANGER,
        ],
    )
    assert result.exit_code == 1
    assert "has no subscription" in result.output


def _meter_two(db: str) -> list[str]:
    service = _service(db)
    now = datetime.now(UTC)
    out = service.batch_meter_usage(
        caller("seller"),
        SAAS,
        [record(now, quantity="2.50"), record(now, dimension="storage_gb", quantity=7)],
    )
    service.store.close()
    return [r.metering_record_id or "" for r in out.results]


def test_records_export_jsonl_has_the_contract_fields(db: str, catalog_file: Path) -> None:
    applied(db, catalog_file)
    ids = _meter_two(db)
    result = run("records", "export", "--database", db, "--product", SAAS)
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert sorted(r["MeteringRecordId"] for r in rows) == sorted(ids)
    rows.sort(key=lambda r: ids.index(r["MeteringRecordId"]))
    assert set(rows[0]) == {
        "MeteringRecordId",
        "ProductCode",
        "CustomerIdentifier",
        "CustomerAWSAccountId",
        "LicenseArn",
        "Dimension",
        "Quantity",
        "QuantityAsDecimal",
        "Timestamp",
        "Operation",
        "ReceivedAt",
    }
    assert rows[0]["Quantity"] == 2.5
    assert rows[0]["QuantityAsDecimal"] == "2.5"
    assert rows[0]["Timestamp"].endswith("Z")
    assert run("records", "export", "--database", db, "--product", AMI).output == ""


def test_records_export_csv(db: str, catalog_file: Path) -> None:
    applied(db, catalog_file)
    _meter_two(db)
    result = run("records", "export", "--database", db, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    by_dimension = {r["Dimension"]: r for r in rows}
    assert set(by_dimension) == {"users", "storage_gb"}
    assert by_dimension["storage_gb"]["Quantity"] == "7"


def test_keys_public_and_rotate(db: str, catalog_file: Path) -> None:
    applied(db, catalog_file)
    v1 = run("keys", "public", "--database", db, "--product", CONTAINER, "--version", "1")
    assert v1.output.startswith("-----BEGIN PUBLIC KEY-----")
    rotated = run("keys", "rotate", "--database", db, "--product", CONTAINER)
    assert rotated.output.splitlines()[-1] == "2"
    v2 = run("keys", "public", "--database", db, "--product", CONTAINER, "--version", "2")
    assert v2.output.startswith("-----BEGIN PUBLIC KEY-----") and v2.output != v1.output
    missing = CliRunner().invoke(
        main, ["keys", "public", "--database", db, "--product", CONTAINER, "--version", "3"]
    )
    assert missing.exit_code == 1 and "no signing key version 3" in missing.output
    not_container = CliRunner().invoke(
        main, ["keys", "rotate", "--database", db, "--product", SAAS]
    )
    assert not_container.exit_code == 1 and "not a container product" in not_container.output
