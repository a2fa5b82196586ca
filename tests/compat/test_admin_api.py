"""The admin API over real HTTP, against a real server on both stores: the token rules,
every route, the error shape, record pages under concurrent inserts."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from marketmeter.admin.routes import ROUTES
from tests.compat.conftest import new_database, recent, start_server
from tests.compat.receiver import Receiver
from tests.compat.server import Server, free_port, marketmeter
from tests.factories import BUYER, CONTAINER, SAAS, SELLER

TOKEN = "admin-token-for-tests-0001"
CONTRACT = "contractproduct0000000001"


@pytest.fixture(scope="module")
def admin_server(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"admin-{store_kind}")
    url = new_database(request, store_kind, directory)
    srv = start_server(url, directory, "--test-controls", "--admin-token", TOKEN)
    yield srv
    srv.stop()


@pytest.fixture
def api(admin_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=admin_server.url + "/admin/v1",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    ) as client:
        yield client


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return dict(body["error"])


# -- the token ---------------------------------------------------------------------------------


def _example_path(path: str) -> str:
    return (
        path.replace("{code}", SAAS)
        .replace("{account}", BUYER)
        .replace("{dimension}", "users")
        .replace("{version}", "1")
        .replace("{record_id}", "x")
        .replace("{id}", "x")
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0000000000"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
    ],
)
def test_nothing_under_admin_answers_without_the_token(
    admin_server: Server, headers: dict[str, str]
) -> None:
    routes = [(r.method, "/admin/v1" + _example_path(r.path)) for r in ROUTES]
    routes += [
        ("GET", "/admin/v1/openapi.json"),
        ("GET", "/admin/v1/nothing-here"),
        ("GET", "/admin/"),
        ("POST", "/admin/v2/anything"),
    ]
    for method, path in routes:
        response = httpx.request(method, admin_server.url + path, headers=headers, json={})
        error = error_of(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in response.text
        assert error["message"]


def test_the_aws_endpoint_answers_beside_the_admin_api(admin_server: Server, fresh: Any) -> None:
    account, _ = fresh.customer()
    answer = admin_server.client().batch_meter_usage(
        ProductCode=SAAS,
        UsageRecords=[
            {
                "Timestamp": recent(),
                "CustomerAWSAccountId": account,
                "Dimension": "users",
                "Quantity": 3,
            }
        ],
    )
    assert answer["Results"][0]["Status"] == "Success"


def test_an_unknown_route_is_404_and_a_wrong_method_405(api: httpx.Client) -> None:
    error_of(api.get("/nothing-here"), 404, "not_found")
    error_of(api.patch("/products"), 405, "method_not_allowed")


def test_a_generated_token_is_printed_once_and_kept_only_hashed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gen.db'}"
    first = start_server(url, tmp_path)
    try:
        log = first.log_path.read_text()
        token = log.split("to choose your own): ")[1].split()[0]
        assert len(token) >= 32
        assert (
            httpx.get(
                first.url + "/admin/v1/products", headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 200
        )
        stored = first.sql("SELECT token_hash FROM admin_token")
        assert len(stored) == 1 and token not in stored[0][0]
    finally:
        first.stop()
    second = Server(url, free_port(), tmp_path)
    second.start()
    try:
        assert second.log_path.read_text().count("admin API token") == 1  # not again
        assert (
            httpx.get(
                second.url + "/admin/v1/products", headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 200
        )
    finally:
        second.stop()


def test_a_short_configured_token_is_refused_at_start(tmp_path: Path) -> None:
    result = marketmeter(
        "serve",
        "--database",
        f"sqlite:///{tmp_path / 's.db'}",
        "--port",
        str(free_port()),
        env={"MARKETMETER_ADMIN_TOKEN": "short"},
        check=False,
    )
    assert result.returncode == 1
    assert "MARKETMETER_ADMIN_TOKEN must be at least 16 characters" in result.stderr


# -- the catalog ------------------------------------------------------------------------------


def test_accounts_list_keys_but_never_secrets(api: httpx.Client, admin_server: Server) -> None:
    response = api.get("/accounts")
    assert response.status_code == 200
    accounts = {a["account_id"]: a for a in response.json()}
    assert SELLER in accounts
    key_ids = {k["access_key_id"] for k in accounts[SELLER]["access_keys"]}
    assert admin_server.keys["seller"][0] in key_ids
    for _, secret, _ in admin_server.keys.values():
        assert secret not in response.text
    assert "secret" not in response.text


def test_apply_a_catalog_then_read_products(api: httpx.Client, tmp_path: Path) -> None:
    receiver = Receiver()
    try:
        document = {
            "accounts": [{"account_id": SELLER}],
            "products": [
                {
                    "product_code": CONTRACT,
                    "seller_account_id": SELLER,
                    "type": "saas",
                    "dimensions": ["seats", "gb"],
                    "pricing": "contract",
                    "fulfillment_url": receiver.url("/fulfil"),
                    "prices": {"gb": {"price_per_unit": "0.023", "currency": "EUR"}},
                }
            ],
        }
        applied = api.post("/catalog", json=document)
        assert applied.status_code == 200, applied.text
        assert applied.json() == {
            "accounts": 1,
            "access_keys": 0,
            "products": 1,
            "subscriptions": 0,
        }
        product = api.get(f"/products/{CONTRACT}").json()
        assert product["pricing"] == "contract"
        assert product["dimensions"] == ["seats", "gb"]
        assert product["prices"] == {"gb": {"price_per_unit": "0.023", "currency": "EUR"}}
        assert CONTRACT in [p["product_code"] for p in api.get("/products").json()]

        # subscribe: the token, POSTed to the fulfillment URL, the answer reported
        buyer = "310000000001"
        done = api.post(
            f"/products/{CONTRACT}/subscriptions", json={"customer_aws_account_id": buyer}
        )
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["changed"] is True
        assert body["subscription"]["state"] == "active"
        assert body["fulfillment"]["status"] == 200
        posted = receiver.wait_for("/fulfil", 1)
        form = parse_qs(posted[0].body.decode())
        assert form["x-amzn-marketplace-token"] == [body["registration_token"]]

        # entitlements
        put = api.put(
            f"/products/{CONTRACT}/subscriptions/{buyer}/entitlements/seats",
            json={"value": "10", "type": "integer"},
        )
        assert put.status_code == 200, put.text
        listed = api.get(f"/products/{CONTRACT}/subscriptions/{buyer}/entitlements").json()
        assert [(e["dimension"], e["value"]) for e in listed] == [("seats", "10")]
        error_of(
            api.put(
                f"/products/{CONTRACT}/subscriptions/{buyer}/entitlements/nope", json={"value": "1"}
            ),
            422,
            "rejected",
        )
        assert (
            api.delete(f"/products/{CONTRACT}/subscriptions/{buyer}/entitlements/seats").status_code
            == 204
        )
        assert api.get(f"/products/{CONTRACT}/subscriptions/{buyer}/entitlements").json() == []

        # unsubscribe, then cancel
        ended = api.post(f"/products/{CONTRACT}/subscriptions/{buyer}/unsubscribe")
        assert ended.status_code == 200
        assert ended.json()["state"] == "unsubscribe-pending"
        got = api.get(f"/products/{CONTRACT}/subscriptions/{buyer}").json()
        assert got["license_arn"] == body["subscription"]["license_arn"]
        other = "310000000002"
        quiet = api.post(
            f"/products/{CONTRACT}/subscriptions",
            json={"customer_aws_account_id": other, "post_to_fulfillment_url": False},
        )
        assert quiet.json()["fulfillment"] is None
        assert len(receiver.at("/fulfil")) == 1
        cancelled = api.post(f"/products/{CONTRACT}/subscriptions/{other}/cancel")
        assert cancelled.status_code == 200
        assert [s["state"] for s in cancelled.json()] == ["cancelled"]
        error_of(
            api.post(f"/products/{CONTRACT}/subscriptions/399999999999/cancel"), 404, "not_found"
        )
    finally:
        receiver.close()


def test_catalog_errors_name_the_field(api: httpx.Client) -> None:
    bad = {"products": [{"product_code": "x", "type": "desktop"}]}
    error = error_of(api.post("/catalog", json=bad), 422, "rejected")
    assert "products[0].type" in error["message"]
    error_of(api.post("/catalog", json=[1, 2]), 422, "invalid_body")
    error_of(api.post("/catalog", content=b"{not json"), 400, "malformed_json")


def test_tokens_and_keys(api: httpx.Client, admin_server: Server) -> None:
    issued = api.post(
        f"/products/{SAAS}/registration-tokens",
        json={"customer_aws_account_id": BUYER, "expires_in_seconds": 600},
    )
    assert issued.status_code == 201, issued.text
    token = issued.json()["registration_token"]
    resolved = admin_server.client().resolve_customer(RegistrationToken=token)
    assert resolved["CustomerAWSAccountId"] == BUYER
    error_of(
        api.post(
            f"/products/{SAAS}/registration-tokens",
            json={"customer_aws_account_id": BUYER, "expires_in_seconds": 0},
        ),
        422,
        "invalid_body",
    )
    error_of(
        api.post(
            f"/products/{SAAS}/registration-tokens",
            json={"customer_aws_account_id": BUYER, "expires_in_seconds": 10**15},
        ),
        422,
        "invalid_body",
    )
    key = api.get(f"/products/{CONTAINER}/public-keys/1")
    assert key.status_code == 200
    assert key.json()["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in key.text
    error_of(api.get(f"/products/{CONTAINER}/public-keys/one"), 400, "invalid_path")
    rotated = api.post(f"/products/{CONTAINER}/public-keys")
    assert rotated.status_code == 201
    assert rotated.json()["version"] == 2
    error_of(api.get(f"/products/{SAAS}/public-keys/1"), 404, "not_found")
    error_of(api.get("/products/nope/public-keys/1"), 404, "not_found")


def test_bodies_are_validated_with_the_field_named(api: httpx.Client) -> None:
    error = error_of(
        api.post("/webhooks", json={"product_code": SAAS, "url": 5}), 422, "invalid_body"
    )
    assert error["details"] == {"field": "url"}
    assert "'url'" in error["message"]
    error = error_of(api.post("/webhooks", json={"product_code": SAAS}), 422, "invalid_body")
    assert "url" in error["message"]
    error = error_of(
        api.post("/webhooks", json={"product_code": SAAS, "url": "http://x/", "colour": "red"}),
        422,
        "invalid_body",
    )
    assert "colour" in error["message"]
    error_of(api.post("/webhooks", content=b""), 400, "malformed_json")


def test_query_parameters_are_checked(api: httpx.Client) -> None:
    error = error_of(api.get("/records", params={"limit": "many"}), 400, "invalid_query")
    assert error["details"] == {"field": "limit"}
    error_of(api.get("/records", params={"from": "yesterday"}), 400, "invalid_query")
    error_of(api.get("/records", params={"colour": "red"}), 400, "invalid_query")
    error_of(api.get("/records", params={"cursor": "!!"}), 400, "invalid_query")
    error_of(api.get("/products", params={"x": "1"}), 400, "invalid_query")


# -- records and usage ---------------------------------------------------------------------------


def _meter(server: Server, account: str, dimension: str, at: datetime, quantity: int) -> str:
    answer = server.client().batch_meter_usage(
        ProductCode=SAAS,
        UsageRecords=[
            {
                "Timestamp": at,
                "CustomerAWSAccountId": account,
                "Dimension": dimension,
                "Quantity": quantity,
            }
        ],
    )
    result = answer["Results"][0]
    assert result["Status"] == "Success", result
    return str(result["MeteringRecordId"])


def test_records_filters_and_detail(api: httpx.Client, admin_server: Server, fresh: Any) -> None:
    account, identifier = fresh.customer()
    at = recent()
    ids = [_meter(admin_server, account, d, at, q) for d, q in (("users", 2), ("storage_gb", 5))]
    by_account = api.get("/records", params={"customer": account}).json()
    assert [r["record_id"] for r in by_account["records"]] == ids
    assert by_account["next_cursor"] is None
    by_identifier = api.get("/records", params={"customer": identifier, "dimension": "users"})
    assert [r["record_id"] for r in by_identifier.json()["records"]] == ids[:1]
    record = api.get(f"/records/{ids[1]}").json()
    assert record["quantity"] == "5"
    assert record["customer_identifier"] == identifier
    assert record["operation"] == "BatchMeterUsage"
    hour = at.replace(minute=0, second=0)
    inside = api.get(
        "/records",
        params={
            "customer": account,
            "from": hour.isoformat(),
            "to": (hour + timedelta(hours=1)).isoformat(),
        },
    )
    assert len(inside.json()["records"]) == 2
    after = api.get(
        "/records", params={"customer": account, "from": (hour + timedelta(hours=1)).isoformat()}
    )
    assert after.json()["records"] == []
    received = api.get(
        "/records",
        params={
            "customer": account,
            "operation": "BatchMeterUsage",
            "product": SAAS,
            "received_from": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        },
    )
    assert len(received.json()["records"]) == 2
    assert (
        api.get("/records", params={"customer": account, "operation": "MeterUsage"}).json()[
            "records"
        ]
        == []
    )
    error_of(api.get("/records/no-such-record"), 404, "not_found")


def test_pages_under_concurrent_inserts_lose_and_repeat_nothing(
    api: httpx.Client, admin_server: Server, fresh: Any
) -> None:
    before = set()
    customers = [fresh.customer()[0] for _ in range(30)]
    at = recent()
    for account in customers[:15]:
        before.add(_meter(admin_server, account, "users", at, 1))
    inserted: list[str] = []
    one_more = threading.Semaphore(0)

    def insert() -> None:
        for account in customers[15:]:
            inserted.append(_meter(admin_server, account, "users", at, 1))
            one_more.release()

    writer = threading.Thread(target=insert)
    writer.start()
    seen: list[str] = []
    cursor = None
    try:
        while True:
            params: dict[str, Any] = {"product": SAAS, "limit": 4, "from": at.isoformat()}
            if cursor:
                params["cursor"] = cursor
            page = api.get("/records", params=params).json()
            seen += [r["record_id"] for r in page["records"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            one_more.acquire(timeout=10)  # between two pages, at least one record is stored
        during = len(inserted)
    finally:
        writer.join()
    assert during >= 3  # the walk really met inserts
    assert len(seen) == len(set(seen))  # nothing twice
    assert before <= set(seen)  # nothing stored before the listing began is missed
    everything = api.get(
        "/records", params={"product": SAAS, "format": "jsonl", "from": at.isoformat()}
    )
    assert everything.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in everything.text.splitlines()]
    assert before | set(inserted) <= {r["record_id"] for r in lines}
    assert len(lines) == len({r["record_id"] for r in lines})


def test_jsonl_streams_every_record_in_order(api: httpx.Client, admin_server: Server) -> None:
    with api.stream("GET", "/records", params={"format": "jsonl"}) as response:
        assert response.status_code == 200
        lines = [json.loads(line) for line in response.iter_lines() if line]
    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/records", params=params).json()
        paged += page["records"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [r["record_id"] for r in lines][: len(paged)] == [r["record_id"] for r in paged]


def test_the_usage_report_is_the_cli_s(api: httpx.Client, admin_server: Server, fresh: Any) -> None:
    account, _ = fresh.customer()
    _meter(admin_server, account, "users", recent(), 4)
    params = {"by": "hour", "group": "customer,dimension"}
    response = api.get(f"/products/{SAAS}/usage", params=params)
    assert response.status_code == 200, response.text
    cli = marketmeter(
        "usage",
        "report",
        "--database",
        admin_server.database_url,
        "--product",
        SAAS,
        "--by",
        "hour",
        "--format",
        "json",
    )
    from_cli = json.loads(cli.stdout)
    from_api = response.json()
    # the two were asked at slightly different "now"s: the same range, the same rows
    assert from_api == from_cli
    mine = [r for r in from_api["rows"] if r["customer_aws_account_id"] == account]
    assert [(r["dimension"], r["quantity"], r["records"]) for r in mine] == [("users", "4", 1)]
    error_of(api.get(f"/products/{SAAS}/usage", params={"group": "colour"}), 422, "rejected")
    error_of(api.get(f"/products/{SAAS}/usage", params={"by": "week"}), 400, "invalid_query")
    error_of(api.get("/products/nope/usage"), 404, "not_found")
    warnings = api.get(f"/products/{SAAS}/usage/warnings")
    assert warnings.status_code == 200, warnings.text
    check = marketmeter(
        "usage",
        "check",
        "--database",
        admin_server.database_url,
        "--product",
        SAAS,
        "--format",
        "json",
    )
    assert warnings.json() == json.loads(check.stdout)
    assert "warnings" not in from_api  # only when asked for: they read the records
    both = api.get(f"/products/{SAAS}/usage", params={**params, "warnings": "true"}).json()
    assert both["rows"] == from_api["rows"]
    ranged = api.get(
        f"/products/{SAAS}/usage/warnings", params={"from": both["from"], "to": both["to"]}
    )
    assert both["warnings"] == ranged.json()
    error_of(api.get("/products/nope/usage/warnings"), 404, "not_found")
    month = datetime.now(UTC).strftime("%Y-%m")
    preview = api.get(f"/products/{SAAS}/invoice", params={"month": month})
    assert preview.status_code == 200, preview.text
    cli_preview = marketmeter(
        "usage",
        "invoice",
        "--database",
        admin_server.database_url,
        "--product",
        SAAS,
        "--month",
        month,
        "--format",
        "json",
    )
    assert preview.json() == json.loads(cli_preview.stdout)
    assert account in [c["customer_aws_account_id"] for c in preview.json()["customers"]]
    error_of(api.get(f"/products/{SAAS}/invoice", params={"month": "May"}), 422, "rejected")
    error_of(api.get(f"/products/{SAAS}/invoice"), 400, "invalid_query")


# -- notifications and test controls ----------------------------------------------------------------


def test_webhooks_event_targets_and_deliveries(api: httpx.Client) -> None:
    receiver = Receiver()
    try:
        url = receiver.url(f"/sns-{uuid.uuid4().hex[:6]}")
        added = api.post("/webhooks", json={"product_code": SAAS, "url": url})
        assert added.status_code == 201, added.text
        webhook = added.json()
        assert webhook["topic_arn"].endswith(SAAS)
        error_of(api.post("/webhooks", json={"product_code": SAAS, "url": url}), 409, "conflict")
        error_of(api.post("/webhooks", json={"product_code": "nope", "url": url}), 404, "not_found")
        assert webhook["id"] in [w["id"] for w in api.get("/webhooks").json()]
        receiver.wait_for(url.split(str(receiver.port))[1], 1)
        deliveries = api.get("/deliveries", params={"product": SAAS}).json()
        confirmation = next(d for d in deliveries if d["target_id"] == webhook["id"])
        error_of(api.post("/deliveries/no-such-delivery/retry"), 404, "not_found")
        deadline = time.monotonic() + 10
        while confirmation["status"] != "delivered" and time.monotonic() < deadline:
            time.sleep(0.05)  # received; its outcome is being recorded
            found = api.get("/deliveries", params={"product": SAAS}).json()
            confirmation = next(d for d in found if d["id"] == confirmation["id"])
        assert confirmation["status"] == "delivered"
        error_of(api.post(f"/deliveries/{confirmation['id']}/retry"), 409, "conflict")
        assert api.delete(f"/webhooks/{webhook['id']}").status_code == 204
        error_of(api.delete(f"/webhooks/{webhook['id']}"), 404, "not_found")

        target = api.post("/event-targets", json={"url": url, "headers": {"X-Key": "v"}})
        assert target.status_code == 201, target.text
        assert target.json()["headers"] == {"X-Key": "v"}
        error_of(api.post("/event-targets", json={"url": url}), 409, "conflict")
        assert api.delete(f"/event-targets/{target.json()['id']}").status_code == 204
    finally:
        receiver.close()


def test_test_controls(api: httpx.Client) -> None:
    at = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    moved = api.put("/test-controls/clock", json={"at": at.isoformat()})
    assert moved.status_code == 200, moved.text
    assert moved.json()["service_time"].startswith("2030-01-02T03:04")
    advanced = api.put("/test-controls/clock", json={"advance_seconds": 3600}).json()
    assert advanced["service_time"].startswith("2030-01-02T04:04")
    error_of(api.put("/test-controls/clock", json={}), 422, "invalid_body")
    assert api.delete("/test-controls/clock").json()["clock_offset_seconds"] == 0
    faults = api.put(
        "/test-controls/faults", json={"throttle_rate": 0.5, "operation": "MeterUsage"}
    )
    assert faults.status_code == 200
    assert faults.json()["faults"]["throttle_rate"] == 0.5
    error_of(api.put("/test-controls/faults", json={"throttle_rate": 2}), 422, "rejected")
    error_of(
        api.put("/test-controls/faults", json={"internal_errors": 10**12}), 422, "invalid_body"
    )
    assert api.delete("/test-controls/faults").json()["faults"] is None


def test_test_controls_are_absent_without_the_flag(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    plain = Server(url, free_port(), tmp_path, ("--admin-token", TOKEN))
    plain.start()
    try:
        response = httpx.get(
            plain.url + "/admin/v1/test-controls", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        error = error_of(response, 404, "not_found")
        assert "--test-controls" in error["message"]
    finally:
        plain.stop()


def test_names_and_filters_holding_nul_are_refused_cleanly(api: httpx.Client) -> None:
    """Found by schemathesis on PostgreSQL (whose text cannot hold NUL): a 409 no route
    documents. Now a 400 for a query parameter, a 404 for a name in the path."""
    error = error_of(api.get("/deliveries", params={"product": "\x00I"}), 400, "invalid_query")
    assert error["details"] == {"field": "product"}
    error_of(api.get("/records", params={"customer": "a\x00"}), 400, "invalid_query")
    error_of(api.get("/products/a%00b/subscriptions"), 404, "not_found")
    error_of(api.get("/records/%00"), 404, "not_found")
