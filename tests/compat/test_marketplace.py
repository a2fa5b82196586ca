"""The marketplace around the API, end to end with real processes: a server of two workers
started with `--test-controls`, the command line changing things, a seller's endpoint (a
real HTTP server) receiving the fulfillment POST, SNS messages (checked with AWS's own
validator) and events, and boto3 calling both APIs. On both stores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.compat.conftest import new_database, start_server
from tests.compat.node import JS_DIR, Node
from tests.compat.receiver import Receiver
from tests.compat.server import NO_RETRIES, Server, marketmeter
from tests.factories import SELLER

pytestmark = [pytest.mark.compat, pytest.mark.timeout(300)]

FOLLOWED = 1.5  # seconds: every worker has followed the test controls by then (a poll: 0.25 s;
# under the full suite's load 0.6 s was once not enough: a travelled clock still seen by a
# server process made the next test's unsubscribe end at once)
LIFE = "lifesaas0000000000000001"  # usage-priced SaaS with a fulfillment URL
CONTRACT = "lifecontract000000000001"  # contract-priced


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture(scope="module")
def market(
    store_kind: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    receiver: Receiver,
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"market-{store_kind}")
    server = start_server(
        new_database(request, store_kind, directory), directory, "--workers", "2", "--test-controls"
    )
    products = {
        "products": [
            {
                "product_code": LIFE,
                "seller_account_id": SELLER,
                "dimensions": ["users"],
                "fulfillment_url": receiver.url("/fulfil"),
            },
            {
                "product_code": CONTRACT,
                "seller_account_id": SELLER,
                "dimensions": ["seats", "tier"],
                "pricing": "contract",
            },
        ]
    }
    path = directory / "products.yaml"
    path.write_text(yaml.safe_dump(products))
    cli(server, "catalog", "apply", str(path))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def real_clock_and_no_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "market" in request.fixturenames:
        server: Server = request.getfixturevalue("market")
        cli(server, "clock", "reset")
        cli(server, "faults", "clear")
        time.sleep(FOLLOWED)


def cli(server: Server, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return marketmeter(*args[:2], "--database", server.database_url, *args[2:], check=check)


def cli1(server: Server, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A command of one word (`subscribe`, `unsubscribe`)."""
    return marketmeter(command, "--database", server.database_url, *args)


TOKEN = "x-amzn-marketplace-token"


def form(received: Any) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(received.body.decode()).items()}


def account(server: Server) -> str:
    return server.fresh.customer()[0]


def batch(server: Server, product: str, who: str, at: datetime, dimension: str = "users") -> str:
    out = server.client("seller").batch_meter_usage(
        ProductCode=product,
        UsageRecords=[
            {"Timestamp": at, "CustomerAWSAccountId": who, "Dimension": dimension, "Quantity": 1}
        ],
    )
    return str(out["Results"][0]["Status"])


def moved(minutes: float) -> datetime:
    """The service clock, `minutes` after the real time (what `clock advance` made it)."""
    return datetime.now(UTC) + timedelta(minutes=minutes)


# -- subscribe and the fulfillment POST ----------------------------------------------------


def test_subscribe_posts_the_token_to_the_fulfillment_url(
    market: Server, receiver: Receiver
) -> None:
    receiver.redirect = "https://seller.example/welcome"
    who = account(market)
    try:
        done = cli1(
            market, "subscribe", "--product", LIFE, "--customer-account", who, "--free-trial"
        )
    finally:
        receiver.redirect = None
    token = done.stdout.splitlines()[-1]
    [posted] = receiver.wait_for("/fulfil", 1, where=lambda r: form(r).get(TOKEN) == token)
    assert form(posted)["x-amzn-marketplace-offer-type"] == "free-trial"
    assert posted.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "answered 302, Location: https://seller.example/welcome" in done.stderr
    resolved = market.client("seller").resolve_customer(RegistrationToken=token)
    assert resolved["CustomerAWSAccountId"] == who


def test_a_fulfillment_url_that_does_not_answer_is_reported_not_fatal(
    market: Server, tmp_path: Path
) -> None:
    product = {
        "products": [
            {
                "product_code": "lifedeadurl0000000000001",
                "seller_account_id": SELLER,
                "dimensions": ["users"],
                "fulfillment_url": "http://127.0.0.1:9/nobody-here",
            }
        ]
    }
    path = tmp_path / "dead.yaml"
    path.write_text(yaml.safe_dump(product))
    cli(market, "catalog", "apply", str(path))
    who = account(market)
    done = cli1(
        market, "subscribe", "--product", "lifedeadurl0000000000001", "--customer-account", who
    )
    assert "did not answer" in done.stderr
    token = done.stdout.splitlines()[-1]
    assert market.client("seller").resolve_customer(RegistrationToken=token)["ProductCode"] == (
        "lifedeadurl0000000000001"
    )


# -- SNS -------------------------------------------------------------------------------------


def verify_with_aws_validator(node: Node, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [node.executable, str(JS_DIR / "verify-sns.mjs")],
        input=json.dumps(messages),
        capture_output=True,
        text=True,
        cwd=JS_DIR,
        timeout=60,
        check=True,
    )
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


@pytest.mark.parametrize("version", ["1", "2"])
def test_sns_subscriptions_confirm_and_every_message_verifies(
    market: Server, receiver: Receiver, js_sdk: Node, version: str
) -> None:
    # A path of this test's own: the receiver outlives one store's server, whose
    # subscription at a shared path would still be delivered to (and be counted here).
    path = f"/sns-v{version}-{uuid.uuid4().hex[:8]}"
    webhook_id = cli(
        market,
        "webhook",
        "add",
        "--product",
        LIFE,
        "--url",
        receiver.url(path),
        "--signature-version",
        version,
    ).stdout.strip()
    [confirmation] = receiver.wait_for(path, 1)
    assert confirmation.headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    deadline = time.monotonic() + 10
    while (
        "confirmed"
        not in cli(market, "webhook", "list").stdout.split(webhook_id, 1)[1].split("\n")[0]
    ):
        assert time.monotonic() < deadline, "the subscription was not confirmed"
        time.sleep(0.1)
    who = account(market)
    subscribed = cli1(
        market, "subscribe", "--product", LIFE, "--customer-account", who, "--offer", "offer-q"
    )
    customer = market.client("seller").resolve_customer(
        RegistrationToken=subscribed.stdout.splitlines()[-1]
    )["CustomerIdentifier"]
    cli1(market, "unsubscribe", "--product", LIFE, "--customer-account", who)

    def about_who(r: Any) -> bool:
        body = r.json()
        return body["Type"] == "SubscriptionConfirmation" or (
            json.loads(body["Message"])["customer-identifier"] == customer
        )

    got = receiver.wait_for(path, 3, where=about_who)
    messages = [r.json() for r in got]
    actions = [json.loads(m["Message"])["action"] for m in messages[1:]]
    assert actions == ["subscribe-success", "unsubscribe-pending"]
    first = json.loads(messages[1]["Message"])
    assert first["offer-identifier"] == "offer-q"
    assert first["isFreeTrialTermPresent"] == "false"
    for received in got[1:3]:
        assert received.headers["x-amz-sns-message-type"] == "Notification"
        assert received.headers["x-amz-sns-subscription-arn"].endswith(webhook_id)
        assert received.headers["x-amz-sns-topic-arn"] == (
            f"arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-{LIFE}"
        )
    assert {m["SignatureVersion"] for m in messages} == {version}
    results = verify_with_aws_validator(js_sdk, messages[:3])
    assert results == [{"ok": True, "error": None}] * 3
    tampered = dict(messages[1], Message=messages[1]["Message"].replace(LIFE, "otherproduct"))
    assert verify_with_aws_validator(js_sdk, [tampered])[0]["ok"] is False
    with urllib.request.urlopen(messages[1]["UnsubscribeURL"]) as answer:
        assert b"<UnsubscribeResponse" in answer.read()
    assert webhook_id not in cli(market, "webhook", "list").stdout


# -- EventBridge -----------------------------------------------------------------------------


def test_events_arrive_in_order_with_their_details(market: Server, receiver: Receiver) -> None:
    cli(
        market,
        "events",
        "add",
        "--url",
        receiver.url("/events"),
        "--product",
        CONTRACT,
        "--header",
        "X-Api-Key: secret-1",
    )
    who = account(market)
    cli1(market, "subscribe", "--product", CONTRACT, "--customer-account", who)
    cli(
        market,
        "entitlement",
        "set",
        "--product",
        CONTRACT,
        "--customer-account",
        who,
        "--dimension",
        "seats",
        "--value",
        "25",
    )
    cli1(market, "unsubscribe", "--product", CONTRACT, "--customer-account", who)
    mine = lambda r: r.json()["detail"]["acceptor"]["accountId"] == who  # noqa: E731
    got = receiver.wait_for("/events", 5, where=mine)
    assert [r.json()["detail-type"] for r in got] == [
        "Purchase Agreement Created - Proposer",
        "License Updated - Manufacturer",
        "Purchase Agreement Amended - Proposer",
        "License Updated - Manufacturer",
        "Purchase Agreement Ended - Proposer",
    ]
    assert {r.headers["x-api-key"] for r in got} == {"secret-1"}
    license_event = got[1].json()
    assert license_event["source"] == "aws.agreement-marketplace"
    assert license_event["detail"]["product"]["code"] == CONTRACT
    assert license_event["detail"]["license"]["arn"].startswith(f"arn:aws:license-manager::{who}:")


# -- the unsubscribe hour, under clock travel ------------------------------------------------


def test_the_final_hour_accepts_records_until_it_closes(market: Server, receiver: Receiver) -> None:
    cli(market, "events", "add", "--url", receiver.url("/hour"), "--product", LIFE)
    who = account(market)
    cli1(market, "subscribe", "--product", LIFE, "--customer-account", who)
    cli1(market, "unsubscribe", "--product", LIFE, "--customer-account", who)
    cli(market, "clock", "advance", "59m")
    time.sleep(FOLLOWED)
    assert batch(market, LIFE, who, moved(59) - timedelta(minutes=1)) == "Success"
    cli(market, "clock", "advance", "2m")
    closed = time.monotonic()
    time.sleep(FOLLOWED)
    assert batch(market, LIFE, who, moved(61) - timedelta(minutes=1)) == "CustomerNotSubscribed"
    mine = lambda r: r.json()["detail"]["acceptor"]["accountId"] == who  # noqa: E731
    got = receiver.wait_for("/hour", 4, where=mine, timeout=5 + 1.5)
    assert [r.json()["detail-type"] for r in got][-1] == "License Deprovisioned - Manufacturer"
    assert time.monotonic() - closed < 5 + 1.5


def test_subscribing_within_the_hour_calls_the_unsubscribe_off(
    market: Server, receiver: Receiver
) -> None:
    cli(market, "events", "add", "--url", receiver.url("/undo"), "--product", LIFE)
    who = account(market)
    cli1(market, "subscribe", "--product", LIFE, "--customer-account", who)
    cli1(market, "unsubscribe", "--product", LIFE, "--customer-account", who)
    cli(market, "clock", "advance", "30m")
    cli1(market, "subscribe", "--product", LIFE, "--customer-account", who)
    cli(market, "clock", "advance", "45m")
    time.sleep(FOLLOWED)
    assert batch(market, LIFE, who, moved(75) - timedelta(minutes=1)) == "Success"
    time.sleep(2)
    mine = lambda r: r.json()["detail"]["acceptor"]["accountId"] == who  # noqa: E731
    kinds = [r.json()["detail-type"] for r in receiver.at("/undo") if mine(r)]
    assert "License Deprovisioned - Manufacturer" not in kinds
    assert kinds.count("Purchase Agreement Created - Proposer") == 2


# -- GetEntitlements through boto3 ------------------------------------------------------------


def entitlement_client(server: Server, key: str = "seller", config: Config = NO_RETRIES) -> Any:
    key_id, secret, _ = server.keys[key]
    return boto3.client(
        "marketplace-entitlement",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=config,
    )


def test_get_entitlements_filters_pages_and_expiry(market: Server) -> None:
    buyers = [account(market) for _ in range(3)]
    for i, who in enumerate(buyers):
        cli1(market, "subscribe", "--product", CONTRACT, "--customer-account", who)
        cli(
            market,
            "entitlement",
            "set",
            "--product",
            CONTRACT,
            "--customer-account",
            who,
            "--dimension",
            "seats",
            "--value",
            str(10 + i),
        )
    expiry = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    cli(
        market,
        "entitlement",
        "set",
        "--product",
        CONTRACT,
        "--customer-account",
        buyers[0],
        "--dimension",
        "tier",
        "--value",
        "gold",
        "--expires-at",
        expiry,
    )
    client = entitlement_client(market)
    mine = {"CUSTOMER_AWS_ACCOUNT_ID": buyers}
    pages = list(
        client.get_paginator("get_entitlements").paginate(
            ProductCode=CONTRACT, Filter=mine, PaginationConfig={"PageSize": 1}
        )
    )
    found = [e for page in pages for e in page["Entitlements"]]
    assert len(pages) >= 4
    assert sorted((e["CustomerAWSAccountId"], e["Dimension"]) for e in found) == sorted(
        [(b, "seats") for b in buyers] + [(buyers[0], "tier")]
    )
    seats = {e["CustomerAWSAccountId"]: e["Value"] for e in found if e["Dimension"] == "seats"}
    assert seats == {b: {"IntegerValue": 10 + i} for i, b in enumerate(buyers)}
    tier = next(e for e in found if e["Dimension"] == "tier")
    assert tier["Value"] == {"StringValue": "gold"}
    assert tier["ExpirationDate"] > datetime.now(UTC)

    cli(market, "clock", "advance", "3h")
    time.sleep(FOLLOWED)
    later = client.get_entitlements(ProductCode=CONTRACT, Filter={"DIMENSION": ["tier"], **mine})
    assert later["Entitlements"] == []

    with pytest.raises(ClientError) as refused:
        entitlement_client(market, "other_seller").get_entitlements(ProductCode=CONTRACT)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


# -- faults, as boto3 sees them ----------------------------------------------------------------


def test_faults_appear_as_boto3_sees_them(market: Server) -> None:
    who = account(market)
    cli1(market, "subscribe", "--product", LIFE, "--customer-account", who)
    at = datetime.now(UTC) - timedelta(minutes=5)
    before = market.record_count()

    cli(market, "faults", "set", "--throttle", "--operation", "BatchMeterUsage")
    time.sleep(FOLLOWED)
    with pytest.raises(ClientError) as throttled:
        batch(market, LIFE, who, at)
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    cli(market, "faults", "set", "--internal-errors", "2")
    time.sleep(FOLLOWED)
    with pytest.raises(ClientError) as failed:
        batch(market, LIFE, who, at)
    assert failed.value.response["Error"]["Code"] == "InternalServiceErrorException"
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    retrying = market.client(
        "seller", config=Config(retries={"mode": "standard", "total_max_attempts": 3})
    )
    out = retrying.batch_meter_usage(
        ProductCode=LIFE,
        UsageRecords=[
            {"Timestamp": at, "CustomerAWSAccountId": who, "Dimension": "users", "Quantity": 2}
        ],
    )
    assert out["Results"][0]["Status"] == "Success"
    assert out["ResponseMetadata"]["RetryAttempts"] == 1
    assert market.record_count() == before + 1

    cli(market, "faults", "set", "--latency", "400", "--operation", "BatchMeterUsage")
    time.sleep(FOLLOWED)
    started = time.monotonic()
    assert batch(market, LIFE, who, at - timedelta(hours=2)) == "Success"
    assert time.monotonic() - started >= 0.4

    cli(market, "faults", "set", "--unprocessed-rate", "1")
    time.sleep(FOLLOWED)
    out = market.client("seller").batch_meter_usage(
        ProductCode=LIFE,
        UsageRecords=[
            {
                "Timestamp": at - timedelta(hours=1),
                "CustomerAWSAccountId": who,
                "Dimension": "users",
                "Quantity": 3,
            }
        ],
    )
    assert out["Results"] == []
    assert len(out["UnprocessedRecords"]) == 1
    assert market.record_count() == before + 2


def test_the_commands_warn_when_no_server_obeys_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'alone.db'}"
    done = marketmeter("clock", "advance", "--database", url, "1h")
    assert done.returncode == 0
    assert "no server started with --test-controls" in done.stderr
    refused = marketmeter("clock", "advance", "--database", url, "soon", check=False)
    assert refused.returncode == 1
    assert "not a duration" in refused.stderr


def test_a_hanging_or_failing_receiver_holds_up_nothing_else(
    market: Server, receiver: Receiver
) -> None:
    hanging, failing = Receiver(), Receiver(status=500)
    hanging.delay = 8.0
    try:
        for url in (hanging.url("/hang"), failing.url("/fail"), receiver.url("/fine")):
            cli(market, "events", "add", "--url", url, "--product", LIFE)
        who = account(market)
        cli1(market, "subscribe", "--product", LIFE, "--customer-account", who)
        started = time.monotonic()
        mine = lambda r: r.json()["detail"]["acceptor"]["accountId"] == who  # noqa: E731
        assert len(receiver.wait_for("/fine", 2, where=mine, timeout=4)) == 2
        assert time.monotonic() - started < 4
        metered = time.monotonic()
        assert batch(market, LIFE, who, datetime.now(UTC) - timedelta(minutes=3)) == "Success"
        assert time.monotonic() - metered < 2
        deadline = time.monotonic() + 10
        while "attempts 2" not in cli(market, "deliveries", "--failed").stdout:
            assert time.monotonic() < deadline, "the failing receiver was not retried"
            time.sleep(0.2)
        assert "HTTP 500" in cli(market, "deliveries", "--failed").stdout
    finally:
        hanging.close()
        failing.close()


# -- kill -9 between a change and its delivery --------------------------------------------------


def test_a_change_made_while_the_server_was_killed_is_delivered_once_after(
    store_kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    server = start_server(new_database(request, store_kind, tmp_path), tmp_path, "--workers", "2")
    try:
        cli(server, "events", "add", "--url", receiver.url("/crash"))
        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
        who = server.fresh.customer()[0]
        cli(
            server,
            "subscription",
            "cancel",
            "--product",
            "saasproduct00000000000001",
            "--customer-account",
            who,
        )
        time.sleep(1)
        assert receiver.at("/crash") == []  # nobody delivers: the server is down
        server.start()
        got = receiver.wait_for("/crash", 2)
        time.sleep(2)  # anything sent twice would have come by now
        ids = [r.json()["id"] for r in receiver.at("/crash")]
        assert len(ids) == 2 == len(set(ids))
        assert [r.json()["detail-type"] for r in got] == [
            "Purchase Agreement Ended - Proposer",
            "License Deprovisioned - Manufacturer",
        ]
    finally:
        server.stop()
