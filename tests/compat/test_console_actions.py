"""The console's actions and the pages that show their effects, over real HTTP against a
real server on both stores: subscribing (the token shown is the one the fulfillment URL
received, and ResolveCustomer resolves it), unsubscribing, cancelling, entitlements (seen
through GetEntitlements), the usage page equal to the usage report, the overview's records
per minute, record filters — each form refused without its CSRF token, nothing changed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from html import unescape
from typing import Any
from urllib.parse import parse_qs

import boto3
import httpx
import pytest

from tests.compat.conftest import new_database, recent, start_server
from tests.compat.console_kit import (
    TOKEN,
    add_products,
    admin,
    csrf,
    meter,
    new_account,
    signed_in_client,
)
from tests.compat.receiver import Receiver
from tests.compat.server import NO_RETRIES, Server
from tests.factories import SAAS, SELLER

SHOP = "consoleshop0000000000001"
CONTRACT = "consolecontract000000001"


@pytest.fixture(scope="module")
def fulfillment() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.redirect = "https://seller.example/welcome?from=marketplace"
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def console_server(
    store_kind: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fulfillment: Receiver,
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"console-actions-{store_kind}")
    srv = start_server(
        new_database(request, store_kind, directory), directory, "--admin-token", TOKEN
    )
    add_products(
        srv,
        {
            "product_code": SHOP,
            "seller_account_id": SELLER,
            "type": "saas",
            "dimensions": ["users", "storage_gb"],
            "fulfillment_url": fulfillment.url("/register"),
        },
        {
            "product_code": CONTRACT,
            "seller_account_id": SELLER,
            "type": "saas",
            "dimensions": ["seats", "tier"],
            "pricing": "contract",
        },
    )
    yield srv
    srv.stop()


@pytest.fixture
def browser(console_server: Server) -> Iterator[httpx.Client]:
    with signed_in_client(console_server) as client:
        yield client


def subscribe(browser: httpx.Client, code: str, account: str, **fields: str) -> httpx.Response:
    return browser.post(
        f"/console/products/{code}/subscribe",
        data={"csrf": csrf(browser), "account": account, "post": "1", **fields},
    )


def state_of(browser: httpx.Client, code: str, account: str) -> str:
    page = browser.get(f"/console/products/{code}/customers/{account}")
    assert page.status_code == 200, page.text
    found = re.search(r'<h2>Subscription <span class="state state-[^"]+">([^<]+)</span>', page.text)
    assert found, page.text
    return found.group(1)


def test_subscribing_shows_the_token_the_fulfillment_url_received(
    browser: httpx.Client, console_server: Server, fulfillment: Receiver
) -> None:
    account = new_account()
    before = len(fulfillment.at("/register"))
    page = subscribe(browser, SHOP, account)
    assert page.status_code == 200, page.text
    shown = re.search(r'<pre class="token" id="registration-token">([^<]+)</pre>', page.text)
    assert shown
    token = unescape(shown.group(1))
    assert '<strong id="fulfillment-status">HTTP 302</strong>' in page.text
    assert "https://seller.example/welcome?from=marketplace" in page.text
    posted = fulfillment.wait_for("/register", before + 1)[-1]
    form = parse_qs(posted.body.decode())
    assert form["x-amzn-marketplace-token"] == [token]
    resolved = console_server.client().resolve_customer(RegistrationToken=token)
    assert resolved["CustomerAWSAccountId"] == account
    assert resolved["ProductCode"] == SHOP
    assert state_of(browser, SHOP, account) == "active"
    # Not posting: the page says so, and the seller's endpoint hears nothing.
    again = browser.post(
        f"/console/products/{SHOP}/subscribe", data={"csrf": csrf(browser), "account": account}
    )
    assert "is subscribed to" in again.text and "already" in again.text
    assert "Not posted" in again.text
    assert len(fulfillment.at("/register")) == before + 1


def test_a_form_without_its_csrf_token_changes_nothing(
    browser: httpx.Client, console_server: Server
) -> None:
    account = new_account()
    refused = browser.post(
        f"/console/products/{SHOP}/subscribe", data={"csrf": "forged", "account": account}
    )
    assert refused.status_code == 403
    assert "came from elsewhere" in refused.text
    with admin(console_server) as api:
        assert api.get(f"/products/{SHOP}/subscriptions/{account}").status_code == 404
    assert subscribe(browser, SHOP, account).status_code == 200
    customer = f"/console/products/{SHOP}/customers/{account}"
    for action in ("unsubscribe", "cancel"):
        assert browser.post(f"{customer}/{action}", data={}).status_code == 403
    assert state_of(browser, SHOP, account) == "active"
    # and without a session, a form is not even read
    with httpx.Client(base_url=console_server.url) as stranger:
        answer = stranger.post(f"{customer}/cancel", data={"csrf": csrf(browser)})
        assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"
    assert state_of(browser, SHOP, account) == "active"


def test_unsubscribe_leaves_an_hour_and_cancel_ends_it_at_once(
    browser: httpx.Client, console_server: Server
) -> None:
    account = new_account()
    subscribe(browser, SHOP, account)
    meter(console_server, account, 4, product=SHOP)
    customer = f"/console/products/{SHOP}/customers/{account}"
    found = browser.get(f"/console/products/{SHOP}/customers", params={"account": account})
    assert found.status_code == 303 and found.headers["location"] == customer  # "find"
    page = browser.get(customer)
    assert 'action="' + customer + '/unsubscribe"' in page.text
    done = browser.post(customer + "/unsubscribe", data={"csrf": csrf(browser)})
    assert done.status_code == 200
    assert "usage is accepted until" in done.text
    assert state_of(browser, SHOP, account) == "unsubscribe-pending"
    meter(console_server, account, 1, product=SHOP, dimension="storage_gb")  # the final hour
    ended = browser.post(customer + "/cancel", data={"csrf": csrf(browser)})
    assert ended.status_code == 200 and "ended" in ended.text
    assert state_of(browser, SHOP, account) == "unsubscribed"  # ended now, not in an hour
    refused = console_server.client().batch_meter_usage(
        ProductCode=SHOP,
        UsageRecords=[
            {
                "Timestamp": recent(),
                "CustomerAWSAccountId": account,
                "Dimension": "users",
                "Quantity": 1,
            }
        ],
    )
    assert refused["Results"][0]["Status"] == "CustomerNotSubscribed"
    unknown = browser.post(
        f"/console/products/{SHOP}/customers/{new_account()}/cancel", data={"csrf": csrf(browser)}
    )
    assert unknown.status_code == 404 and "has no subscription" in unknown.text


def entitlements_of(server: Server, account: str) -> dict[str, Any]:
    key_id, secret, _ = server.keys["seller"]
    client = boto3.client(
        "marketplace-entitlement",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=NO_RETRIES,
    )
    found = client.get_entitlements(
        ProductCode=CONTRACT, Filter={"CUSTOMER_AWS_ACCOUNT_ID": [account]}
    )["Entitlements"]
    return {e["Dimension"]: e["Value"] for e in found}


def test_entitlements_are_set_and_removed_and_seen_by_get_entitlements(
    browser: httpx.Client, console_server: Server
) -> None:
    account = new_account()
    assert subscribe(browser, CONTRACT, account).status_code == 200
    customer = f"/console/products/{CONTRACT}/customers/{account}"
    assert "<h2>Entitlements</h2>" in browser.get(customer).text
    done = browser.post(
        customer + "/entitlements",
        data={"csrf": csrf(browser), "dimension": "seats", "value": "25", "type": "integer"},
    )
    assert done.status_code == 200, done.text
    assert "seats = 25 (integer)" in done.text
    assert entitlements_of(console_server, account) == {"seats": {"IntegerValue": 25}}
    bad = browser.post(
        customer + "/entitlements",
        data={"csrf": csrf(browser), "dimension": "tier", "value": "gold", "type": "integer"},
    )
    assert bad.status_code == 422
    assert 'role="alert"' in bad.text
    not_a_dimension = browser.post(
        customer + "/entitlements",
        data={"csrf": csrf(browser), "dimension": "nope", "value": "1"},
    )
    assert not_a_dimension.status_code == 422 and "is not a dimension" in not_a_dimension.text
    assert entitlements_of(console_server, account) == {"seats": {"IntegerValue": 25}}
    page = browser.get(customer).text
    assert re.search(r"<td>seats</td>\s*<td>integer</td>\s*<td class=\"num\">25</td>", page)
    removed = browser.post(
        customer + "/entitlements/remove", data={"csrf": csrf(browser), "dimension": "seats"}
    )
    assert removed.status_code == 200
    assert entitlements_of(console_server, account) == {}
    # a product priced by usage has no entitlements: no form, and a POST is refused
    assert "<h2>Entitlements</h2>" not in browser.get(f"/console/products/{SAAS}").text
    usage_priced = new_account()
    subscribe(browser, SHOP, usage_priced)
    refused = browser.post(
        f"/console/products/{SHOP}/customers/{usage_priced}/entitlements",
        data={"csrf": csrf(browser), "dimension": "users", "value": "3"},
    )
    assert refused.status_code == 422 and "priced by usage" in refused.text


def usage_table(page: httpx.Response) -> dict[str, dict[str, str]]:
    """The usage page's table: {hour: {dimension: quantity}} (empty cells left out)."""
    assert page.status_code == 200, page.text
    table = re.search(r'<table id="usage-table">(.*?)</table>', page.text, re.S)
    assert table, page.text
    head = re.findall(r'<th class="num">([^<]+)</th>', table.group(1).split("</thead>")[0])
    dimensions = head[:-1]  # (the last column: records)
    rows: dict[str, dict[str, str]] = {}
    body = table.group(1).split("<tbody>")[1].split("</tbody>")[0]
    for hour, cells in re.findall(r"<tr><td>([^<]+)</td>(.*?)</tr>", body, re.S):
        values = re.findall(r'<td class="num">([^<]*)</td>', cells)[:-1]
        rows[hour] = {d: v for d, v in zip(dimensions, values, strict=True) if v}
    return rows


def test_the_usage_page_shows_the_usage_report_s_numbers(
    browser: httpx.Client, console_server: Server, fresh: Any
) -> None:
    account, identifier = fresh.customer()
    meter(console_server, account, 5, tag="alpha")
    meter(console_server, account, 7, dimension="storage_gb", tag="beta")
    meter(console_server, account, 11, hours_ago=2, tag="alpha")
    other, _ = fresh.customer()
    meter(console_server, other, 100)
    with admin(console_server) as api:
        report = api.get(
            f"/products/{SAAS}/usage", params={"by": "hour", "group": "customer,dimension,tag:team"}
        ).json()
    expected: dict[str, dict[str, Decimal]] = {}
    for row in report["rows"]:
        if row["customer_aws_account_id"] == account:
            cell = expected.setdefault(row["period"], {})
            cell[row["dimension"]] = cell.get(row["dimension"], Decimal(0)) + Decimal(
                row["quantity"]
            )
    assert sum(sum(c.values()) for c in expected.values()) == 23
    for who in (account, identifier):  # by account ID or by CustomerIdentifier
        shown = usage_table(
            browser.get("/console/usage", params={"product": SAAS, "customer": who})
        )
        assert {h: {d: Decimal(v) for d, v in c.items()} for h, c in shown.items()} == expected
    page = browser.get("/console/usage", params={"product": SAAS, "customer": account})
    assert '<strong id="usage-total">23</strong>' in page.text
    titles = re.findall(r"<title>([^<]+)</title>", page.text)
    assert any(t.endswith("· users: 11") for t in titles), titles
    assert any(t.endswith("· storage_gb: 7") for t in titles), titles
    tagged = usage_table(
        browser.get(
            "/console/usage", params={"product": SAAS, "customer": account, "tag": "team=alpha"}
        )
    )
    assert sorted(Decimal(v) for c in tagged.values() for v in c.values()) == [5, 11]
    one = usage_table(
        browser.get(
            "/console/usage",
            params={"product": SAAS, "customer": account, "dimension": "storage_gb"},
        )
    )
    assert list(one.values()) == [{"storage_gb": "7"}]
    bad = browser.get("/console/usage", params={"product": SAAS, "tag": "no-equals-sign"})
    assert bad.status_code == 422 and "KEY=VALUE" in unescape(bad.text)
    bad_time = browser.get("/console/usage", params={"product": SAAS, "from": "yesterday"})
    assert bad_time.status_code == 422 and "YYYY-MM-DDTHH:MM" in bad_time.text
    missing = browser.get("/console/usage", params={"product": "nosuchproduct"})
    assert missing.status_code == 404


def test_the_overview_counts_the_records_received_in_the_last_hour(
    browser: httpx.Client, console_server: Server, fresh: Any
) -> None:
    def received() -> int:
        page = browser.get("/console/").text
        found = re.search(r"\((\d+) received", page)
        assert found, page
        return int(found.group(1))

    before = received()
    account, _ = fresh.customer()
    for dimension in ("users", "storage_gb"):
        meter(console_server, account, 1, dimension=dimension)
    assert received() == before + 2


def test_records_filter_by_license_and_usage_time(
    browser: httpx.Client, console_server: Server, fresh: Any
) -> None:
    account, _ = fresh.customer()
    recent_id = meter(console_server, account, 1)
    older_id = meter(console_server, account, 2, hours_ago=3)
    with admin(console_server) as api:
        license_arn = api.get(f"/products/{SAAS}/subscriptions/{account}").json()["license_arn"]
        older_at = datetime.fromisoformat(api.get(f"/records/{older_id}").json()["timestamp"])

    def listed(**params: str) -> list[str]:
        page = browser.get("/console/records", params=params)
        assert page.status_code == 200, page.text
        return re.findall(r'href="/console/records/([^"]+)"', page.text)

    assert listed(license=license_arn) == [recent_id, older_id]  # in the order stored
    cut = (older_at + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    assert listed(license=license_arn, to=cut) == [older_id]
    assert listed(license=license_arn, **{"from": cut}) == [recent_id]
    bad = browser.get("/console/records", params={"from": "soon"})
    assert bad.status_code == 422 and "Usage from" in bad.text


def test_hostile_input_gets_a_page_saying_why_never_a_500(
    browser: httpx.Client, console_server: Server
) -> None:
    token = csrf(browser)
    customer = f"/console/products/{SHOP}/customers/{new_account()}"
    forged = browser.post(customer + "/cancel", data={"csrf": "jeton-forgé-ü"})
    assert forged.status_code == 403  # (a non-ASCII token compared safely)
    assert browser.get("/console/records", params={"after": "²", "limit": "9" * 5000}).is_success
    for params in (
        {"product": SAAS, "to": "0001-01-01T00:00"},
        {"product": SAAS, "from": "0001-01-01T00:00+01:00"},
        {"product": SAAS, "from": "9999-12-31T23:59"},
    ):
        answer = browser.get("/console/usage", params=params)
        assert answer.status_code == 422, (params, answer.text)
    broken = browser.post(
        customer + "/cancel",
        content=b'--x\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n' + token.encode(),
        headers={"content-type": "multipart/form-data"},
    )
    assert broken.status_code == 400, broken.text  # (multipart without its boundary)
    assert "could not be read" in broken.text
    blank = browser.get(f"/console/products/{SHOP}/customers", params={"account": "  "})
    assert blank.status_code == 422
    with httpx.Client(base_url=console_server.url) as stranger:
        page = stranger.get("/console/sign-in")
        assert page.status_code == 200
        answer = stranger.post("/console/sign-in", data={"nonce": "ünïcode", "token": TOKEN})
        assert answer.status_code == 401


def test_names_and_filters_holding_nul_find_nothing(browser: httpx.Client) -> None:
    """No stored name holds NUL, and PostgreSQL's text cannot: never a 500."""
    for path in ("/console/products/a%00b", f"/console/products/{SAAS}/customers/1%002"):
        assert browser.get(path).status_code == 404, path
    assert browser.get("/console/records/%00").status_code == 404
    assert browser.get("/console/records", params={"product": "\x00x"}).status_code == 200
    assert browser.get("/console/deliveries", params={"product": "a\x00"}).status_code == 200
    usage = browser.get("/console/usage", params={"product": SAAS, "customer": "\x00"})
    assert usage.status_code == 200
