"""The marketplace commands, in-process on real SQLite files: what they print, and bad
input — one line naming what was wrong, exit 1 for a rejected value, 2 for unusable
options, nothing changed."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from marketmeter.cli import main
from tests.factories import BUYER, SAAS, SELLER, make_catalog

CONTRACT = "contract01"


@pytest.fixture
def db(tmp_path: Path) -> str:
    catalog = make_catalog()
    catalog["products"].append(
        {
            "product_code": CONTRACT,
            "seller_account_id": SELLER,
            "dimensions": ["seats"],
            "pricing": "contract",
        }
    )
    catalog["subscriptions"].append({"product_code": CONTRACT, "customer_aws_account_id": BUYER})
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run("catalog", "apply", "--database", url, str(path)).exit_code == 0
    return url


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def counts(db: str) -> tuple[int, ...]:
    conn = sqlite3.connect(db.removeprefix("sqlite:///"))
    try:
        return tuple(
            conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in (
                "subscriptions",
                "entitlements",
                "webhooks",
                "event_targets",
                "deliveries",
            )
        )
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("subscribe", "--product", "noproduct", "--customer-account", BUYER), "no product"),
        (("subscribe", "--product", SAAS, "--customer-account", "12"), "12 digits"),
        (
            ("unsubscribe", "--product", SAAS, "--customer-account", "000011112222"),
            "no subscription",
        ),
        (
            (
                "entitlement",
                "set",
                "--product",
                CONTRACT,
                "--customer-account",
                BUYER,
                "--dimension",
                "colour",
                "--value",
                "red",
            ),
            "not a dimension",
        ),
        (
            (
                "entitlement",
                "set",
                "--product",
                CONTRACT,
                "--customer-account",
                BUYER,
                "--dimension",
                "seats",
                "--value",
                "many",
                "--type",
                "integer",
            ),
            "not an integer",
        ),
        (
            (
                "entitlement",
                "set",
                "--product",
                CONTRACT,
                "--customer-account",
                BUYER,
                "--dimension",
                "seats",
                "--value",
                "3",
                "--expires-at",
                "tomorrow",
            ),
            "not an ISO 8601 time",
        ),
        (("webhook", "add", "--product", SAAS, "--url", "ftp://seller.example/x"), "HTTP(S)"),
        (("events", "add", "--url", "seller.example/events"), "HTTP(S)"),
        (("events", "add", "--url", "http://x", "--header", "no-colon"), "Name: value"),
        (("clock", "advance", "soon"), "not a duration"),
        (("faults", "set", "--throttle-rate", "1.5"), "fraction"),
        (("faults", "set", "--operation", "Nope"), "operation must be"),
        (("webhook", "remove", "no-such-id"), "no webhook"),
    ],
)
def test_a_rejected_value_is_one_line_exit_1_and_changes_nothing(
    db: str, args: tuple[str, ...], says: str
) -> None:
    before = counts(db)
    result = (
        run(*args[:2], "--database", db, *args[2:])
        if args[0] in ("entitlement", "webhook", "events", "clock", "faults")
        else run(args[0], "--database", db, *args[1:])
    )
    assert result.exit_code == 1, result.output
    assert says in result.output
    assert result.output.strip().count("\n") == 0, result.output
    assert counts(db) == before


def test_a_duplicate_webhook_is_refused(db: str) -> None:
    add = ("webhook", "add", "--database", db, "--product", SAAS, "--url", "https://s.example/sns")
    assert run(*add).exit_code == 0
    before = counts(db)
    second = run(*add)
    assert second.exit_code == 1
    assert "already" in second.output
    assert counts(db) == before


def test_unusable_options_exit_2(db: str) -> None:
    assert run("subscribe", "--database", db, "--product", SAAS).exit_code == 2
    assert (
        run(
            "webhook",
            "add",
            "--database",
            db,
            "--product",
            SAAS,
            "--url",
            "https://x",
            "--signature-version",
            "3",
        ).exit_code
        == 2
    )
    assert run("faults", "set", "--database", db, "--internal-errors", "-1").exit_code == 2


def test_webhooks_events_and_deliveries_are_listed(db: str) -> None:
    webhook = (
        run(
            "webhook",
            "add",
            "--database",
            db,
            "--product",
            SAAS,
            "--url",
            "https://s.example/sns",
            "--topic",
            "entitlement",
        )
        .output.strip()
        .splitlines()[-1]
    )
    target = (
        run(
            "events",
            "add",
            "--database",
            db,
            "--url",
            "https://s.example/events",
            "--header",
            "X-Key: 1",
        )
        .output.strip()
        .splitlines()[-1]
    )
    listed = run("webhook", "list", "--database", db).output
    assert webhook in listed
    assert "aws-mp-entitlement-notification-" + SAAS in listed
    assert "pending confirmation" in listed
    assert target in run("events", "list", "--database", db).output
    run("subscribe", "--database", db, "--product", SAAS, "--customer-account", "123412341234")
    deliveries = run("deliveries", "--database", db).output
    assert "SubscriptionConfirmation" in deliveries
    assert "Purchase Agreement Created - Proposer" in deliveries
    assert "not tried yet" in deliveries
    assert run("events", "remove", "--database", db, target).exit_code == 0
    assert run("webhook", "remove", "--database", db, webhook).exit_code == 0
    assert run("webhook", "list", "--database", db).output == ""


def test_deliveries_send_reports_failures_and_retries(db: str) -> None:
    run("events", "add", "--database", db, "--url", "http://127.0.0.1:9/nobody")
    run("subscribe", "--database", db, "--product", SAAS, "--customer-account", "123412341234")
    sent = run("deliveries", "send", "--database", db)
    assert sent.exit_code == 0
    assert "2 deliveries attempted" in sent.output
    failed = run("deliveries", "--database", db, "--failed").output
    assert failed.count("attempts 1") == 2
    assert "ConnectError" in failed


def test_a_failed_delivery_is_retried_with_a_new_day_of_attempts(db: str) -> None:
    run("events", "add", "--database", db, "--url", "http://127.0.0.1:9/nobody")
    run("subscribe", "--database", db, "--product", SAAS, "--customer-account", "123412341234")
    listed = run("deliveries", "--database", db).output
    ids = re.findall(r"^(\S+)  eventbridge", listed, re.MULTILINE)
    assert len(ids) == 2, listed
    early = run("deliveries", "retry", "--database", db, ids[0])
    assert early.exit_code == 1
    assert "not due yet" in early.output
    # A day later every attempt is spent: the next failure is final.
    assert run("clock", "advance", "--database", db, "25h").exit_code == 0
    assert "2 deliveries attempted" in run("deliveries", "send", "--database", db).output
    assert run("deliveries", "--database", db).output.count(" failed ") == 2
    retried = run("deliveries", "retry", "--database", db, ids[0])
    assert retried.exit_code == 0, retried.output
    assert "due again now, after 1 attempts" in retried.output
    after = run("deliveries", "--database", db).output
    assert after.count(" failed ") == 1 and after.count(" pending ") == 1
    # Only the retried one is due; it fails again but is not final: a new day began.
    assert "1 deliveries attempted" in run("deliveries", "send", "--database", db).output
    again = run("deliveries", "--database", db).output
    assert again.count(" failed ") == 1 and "attempts 2" in again
    unknown = run("deliveries", "retry", "--database", db, "no-such-delivery")
    assert unknown.exit_code == 1 and "no delivery no-such-delivery" in unknown.output
