"""The console over real HTTP, against a real server: signing in and out with the admin
token, the session cookie's flags, CSRF on every form, the security headers, and the
overview's totals equal to what boto3 sent — by HTTP, and as a person does it, in
headless Chromium (Debian's `chromium`, driven by Playwright)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.compat.conftest import new_database, start_server
from tests.compat.console_kit import (
    TOKEN,
    add_products,
    meter,
    new_account,
    sign_in_form,
    signed_in,
)
from tests.compat.server import Server
from tests.factories import SAAS


@pytest.fixture(scope="module")
def console_server(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"console-{store_kind}")
    srv = start_server(
        new_database(request, store_kind, directory), directory, "--admin-token", TOKEN
    )
    yield srv
    srv.stop()


@pytest.fixture
def browser(console_server: Server) -> Iterator[httpx.Client]:
    """A client that keeps cookies and does not follow redirects, as a test of them."""
    with httpx.Client(base_url=console_server.url, timeout=30) as client:
        yield client


def cookie_attributes(response: httpx.Response, name: str) -> set[str]:
    header = next(h for h in response.headers.get_list("set-cookie") if h.startswith(name + "="))
    return {part.strip().lower() for part in header.split(";")[1:]}


def test_nothing_shows_without_a_session(browser: httpx.Client) -> None:
    for path in ("/console", "/console/"):
        answer = browser.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console")
    assert browser.get("/console/", follow_redirects=True).url.path == "/console/sign-in"
    browser.cookies.set("mm_console", "forged.cookie.value", path="/console")
    assert browser.get("/console/").headers["location"] == "/console/sign-in"


def test_every_response_carries_the_security_headers(browser: httpx.Client) -> None:
    for path in ("/console/", "/console/sign-in", "/console/static/console.css"):
        answer = browser.get(path)
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert browser.get("/console/static/console.css").headers["content-type"].startswith("text/css")


def test_a_wrong_token_is_refused(browser: httpx.Client) -> None:
    nonce = sign_in_form(browser)
    answer = browser.post("/console/sign-in", data={"nonce": nonce, "token": TOKEN + "x"})
    assert answer.status_code == 401
    assert "That is not the admin token." in answer.text
    assert not any(h.startswith("mm_console=") for h in answer.headers.get_list("set-cookie"))
    assert browser.get("/console/").status_code == 303


def test_a_sign_in_from_elsewhere_is_refused(console_server: Server) -> None:
    """The right token, but posted without the form's nonce cookie (another site's form)."""
    with httpx.Client(base_url=console_server.url) as elsewhere:
        answer = elsewhere.post("/console/sign-in", data={"nonce": "x", "token": TOKEN})
    assert answer.status_code == 401
    assert "came from elsewhere" in answer.text


def test_sign_in_sets_a_strict_session_cookie_and_sign_out_needs_the_csrf_token(
    browser: httpx.Client,
) -> None:
    nonce = sign_in_form(browser)
    answer = browser.post("/console/sign-in", data={"nonce": nonce, "token": TOKEN})
    assert answer.status_code == 303
    assert {"httponly", "samesite=strict", "path=/console"} <= cookie_attributes(
        answer, "mm_console"
    )
    page = browser.get("/console/")
    assert page.status_code == 200 and "<h1>Overview</h1>" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    refused = browser.post("/console/sign-out", data={"csrf": "not-the-token"})
    assert refused.status_code == 403
    assert browser.get("/console/").status_code == 200  # still signed in
    out = browser.post("/console/sign-out", data={"csrf": csrf.group(1)})
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    assert browser.get("/console/").status_code == 303


def test_the_overview_totals_what_boto3_sent(
    browser: httpx.Client, console_server: Server, fresh: Any
) -> None:
    account, _ = fresh.customer()
    before = product_month(browser, SAAS)
    meter(console_server, account, 7)
    after = product_month(browser, SAAS)
    assert after == (before[0] + Decimal(7), before[1] + 1)


def product_month(browser: httpx.Client, code: str) -> tuple[Decimal, int]:
    """The overview's month total and record count for `code`."""
    if browser.get("/console/").status_code != 200:
        signed_in(browser)
    page = browser.get("/console/").text
    row = re.search(rf"<code>{code}</code>.*?</tr>", page, re.S)
    assert row, page
    numbers = re.findall(r'<td class="num">([^<]*)</td>', row.group(0))
    assert len(numbers) == 4
    return Decimal(numbers[2]), int(numbers[3])


def test_products_and_a_product_s_customers(
    browser: httpx.Client, console_server: Server, fresh: Any
) -> None:
    assert browser.get("/console/products").status_code == 303  # not signed in
    signed_in(browser)
    listing = browser.get("/console/products")
    assert listing.status_code == 200
    assert f'href="/console/products/{SAAS}"' in listing.text
    account, identifier = fresh.customer()
    meter(console_server, account, 3)
    page = browser.get(f"/console/products/{SAAS}")
    assert page.status_code == 200
    row = re.search(rf"<code>{account}</code>.*?</tr>", page.text, re.S)
    assert row, page.text
    assert f"<code>{identifier}</code>" in row.group(0)
    assert ">active<" in row.group(0)
    assert re.findall(r'<td class="num">([^<]*)</td>', row.group(0)) == ["3", "1"]
    missing = browser.get("/console/products/nosuchproduct")
    assert missing.status_code == 404
    assert "no product" in missing.text


TAG = "a/b c=d"
SCRIPT = "<script>alert(1)</script><img src=x onerror=alert(2)>"
"""Markup sent by an SDK: as a dimension's name (UsageDimension is any text, `[\\s\\S]+`,
and the catalog names the dimensions). A tag value cannot carry it: tag values are the
seller guide's characters only (letters, digits, space, + - = . _ : / @ — DESIGN.md §5)."""
SCRIPT_PRODUCT = "scriptproduct000000000001"
HOSTILE_URL = (
    "http://127.0.0.1:9/register?next=<script>alert(1)</script><img src=x onerror=alert(2)>"
)
HOSTILE_PRODUCT = "hostileproduct00000000001"


def add_hostile_product(server: Server) -> None:
    """Client-supplied text that would be markup if printed raw: a catalog's fulfillment
    URL."""
    add_products(
        server,
        {
            "product_code": HOSTILE_PRODUCT,
            "seller_account_id": "111122223333",
            "type": "saas",
            "dimensions": ["users"],
            "fulfillment_url": HOSTILE_URL,
        },
    )


def test_records_filter_page_and_show_client_text_as_text(
    browser: httpx.Client, console_server: Server, fresh: Any
) -> None:
    signed_in(browser)
    account, _ = fresh.customer()
    ids = [
        meter(console_server, account, 2, tag=TAG),
        meter(console_server, account, 3, dimension="storage_gb", tag=TAG),
        meter(console_server, account, 9, hours_ago=1),
    ]
    first = browser.get("/console/records", params={"customer": account, "limit": 2})
    assert first.status_code == 200
    listed = re.findall(r'href="/console/records/([^"]+)"', first.text)
    assert listed == ids[:2]  # in the order stored, the filter's only
    assert first.text.count(f'<span class="tag">team={TAG}</span>') == 2
    more = re.search(r'class="next" href="([^"]+)"', first.text)
    assert more
    second = browser.get(more.group(1).replace("&amp;", "&"))
    assert re.findall(r'href="/console/records/([^"]+)"', second.text) == ids[2:]
    assert 'class="next"' not in second.text
    detail = browser.get(f"/console/records/{ids[0]}")
    assert detail.status_code == 200
    assert f"<code>{account}</code>" in detail.text and f"team={TAG}" in detail.text
    assert browser.get("/console/records/no-such-record").status_code == 404
    add_hostile_product(console_server)
    product = browser.get(f"/console/products/{HOSTILE_PRODUCT}")
    assert product.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in product.text
    assert "<script>alert" not in product.text and "<img src=x" not in product.text


# -- in a browser --------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (scripts/install-system-packages does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


def test_a_person_signs_in_sees_the_usage_and_signs_out(
    chromium: Any, console_server: Server, fresh: Any
) -> None:
    page = chromium.new_page()
    problems: list[str] = []  # a CSP violation or a script error shows here
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(console_server.url + "/console/")
    assert page.url.endswith("/console/sign-in")
    page.fill("#token", TOKEN + "-wrong")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text() == "That is not the admin token."
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")
    assert page.get_by_role("heading", name="Overview").is_visible()
    # the stylesheet applied (served under the CSP): numbers are right-aligned
    cell = page.locator("td.num").first
    assert cell.evaluate("e => getComputedStyle(e).textAlign") == "right"

    def month_of(code: str) -> tuple[str, str]:
        row = page.locator("tr", has=page.locator("code", has_text=code))
        cells = row.locator("td.num").all_inner_texts()
        return cells[2], cells[3]

    before = month_of(SAAS)
    account, _ = fresh.customer()
    meter(console_server, account, 5)
    page.reload()
    after = month_of(SAAS)
    assert Decimal(after[0]) == Decimal(before[0]) + 5
    assert int(after[1]) == int(before[1]) + 1
    # client-supplied text that would be markup shows as text, and runs nothing
    add_hostile_product(console_server)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{console_server.url}/console/products/{HOSTILE_PRODUCT}")
    assert page.get_by_text(HOSTILE_URL).is_visible()
    assert page.locator("main img").count() == 0 and dialogs == []
    page.click("text=Sign out")
    page.wait_for_url("**/console/sign-in")
    page.goto(console_server.url + "/console/")
    assert page.url.endswith("/console/sign-in")
    assert problems == []
    page.close()


def test_test_controls_are_absent_without_the_flag(browser: httpx.Client) -> None:
    csrf = signed_in(browser)
    assert "Test controls" not in browser.get("/console/").text
    page = browser.get("/console/test-controls")
    assert page.status_code == 404 and "--test-controls" in page.text
    for form in ("clock", "faults"):
        answer = browser.post(
            f"/console/test-controls/{form}", data={"csrf": csrf, "action": "reset"}
        )
        assert answer.status_code == 404 and "--test-controls" in answer.text


def sign_in_as_a_person(page: Any, server: Server) -> None:
    page.goto(server.url + "/console/")
    assert page.url.endswith("/console/sign-in")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")


def test_a_person_subscribes_a_buyer_and_sees_the_usage_boto3_sent(
    chromium: Any, console_server: Server
) -> None:
    add_products(
        console_server,
        {
            "product_code": SCRIPT_PRODUCT,
            "seller_account_id": "111122223333",
            "type": "saas",
            "dimensions": ["users", SCRIPT],
        },
    )
    page = chromium.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in_as_a_person(page, console_server)
    page.click("nav >> text=Products")
    page.click(f"main >> text={SCRIPT_PRODUCT}")
    account = new_account()
    page.fill("#account", account)
    page.get_by_role("button", name="Subscribe", exact=True).click()
    token = page.locator("#registration-token").inner_text()
    resolved = console_server.client().resolve_customer(RegistrationToken=token)
    assert resolved["CustomerAWSAccountId"] == account
    page.get_by_role("link", name=account).click()
    assert page.locator("h2 .state").inner_text() == "active"

    ids = [
        meter(console_server, account, 6, tag=TAG, product=SCRIPT_PRODUCT),
        meter(console_server, account, 4, dimension=SCRIPT, product=SCRIPT_PRODUCT),
    ]
    page.get_by_role("link", name="Records", exact=True).last.click()  # this buyer's records
    rows = page.locator("tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator(".tag").inner_text() == f"team={TAG}"
    assert rows.locator("td.num").all_inner_texts() == ["6", "4"]
    assert rows.nth(1).locator("td").nth(4).inner_text() == SCRIPT  # text, not markup
    assert page.locator("main img, main script").count() == 0
    rows.nth(1).locator("a").click()
    page.wait_for_url(f"**/console/records/{ids[1]}")
    assert page.get_by_text(SCRIPT).count() >= 1

    page.goto(f"{console_server.url}/console/usage?product={SCRIPT_PRODUCT}&customer={account}")
    titles = page.locator("svg rect title").all_text_contents()
    assert sorted(t.split(" · ", 1)[1] for t in titles) == [f"{SCRIPT}: 4", "users: 6"]
    fills = page.locator("svg rect").evaluate_all("rs => rs.map(r => getComputedStyle(r).fill)")
    assert sorted(fills) == ["rgb(224, 123, 36)", "rgb(36, 87, 197)"]  # one colour a dimension
    assert page.locator(".legend .key").all_inner_texts() == ["users", SCRIPT]
    assert page.locator("#usage-total").inner_text() == "10"
    page.fill("#u-tag", "team=" + TAG)
    page.get_by_role("button", name="Show").click()
    assert page.locator("#usage-total").inner_text() == "6"  # only the tagged record
    assert page.locator("main img, main script").count() == 0
    assert dialogs == [] and problems == []
    page.close()
