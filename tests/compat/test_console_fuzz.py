"""The console, fuzzed as a person (or a hostile one) uses it: a signed-in client crawls
every page it can reach from the overview, reads each page's forms — their fields, hidden
values and options — and hypothesis fills them with values drawn from what the pages
show (product codes, accounts, dimensions) mixed with hostile text (NUL, other scripts,
huge numbers, malformed times), sometimes in a mangled address. Every answer must be a
page (or a redirect) with the console's security headers and a status the console
documents — never a 5xx or a trace — and a form the console refuses must change nothing
that the admin API shows. On both stores. (The admin API gets the same from its OpenAPI
document: `test_admin_openapi.py`.)"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from marketmeter.console.app import SECURITY_HEADERS
from tests.compat.conftest import new_database, start_server
from tests.compat.console_kit import (
    TOKEN,
    add_products,
    admin,
    csrf,
    new_account,
    signed_in_client,
)
from tests.compat.server import Server
from tests.factories import SELLER

pytestmark = pytest.mark.compat

PAGE_STATUSES = {200, 303, 404, 422}  # (303: the "find a customer" form, to its page)
ACTION_STATUSES = {200, 303, 400, 403, 404, 409, 422}
# Examples a form (the crawl finds ~15 forms): 8, the same ones each run (the suite's
# result must not depend on luck); CONSOLE_FUZZ_EXAMPLES=N for N random ones a form.
EXAMPLES = int(os.environ.get("CONSOLE_FUZZ_EXAMPLES", "8"))
EXPLORING = "CONSOLE_FUZZ_EXAMPLES" in os.environ
CONTRACT = "consolefuzzcontract00001"
NOT_FUZZED = ("/sign-out", "/sign-in")  # (ending the session would end the run)


@dataclass
class Form:
    method: str
    action: str
    fields: dict[str, list[str]] = field(default_factory=dict)  # name: values offered


class _Reader(HTMLParser):
    """The links and forms of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form":
            self.forms.append(Form(a.get("method", "get").upper(), a.get("action", "")))
        elif tag in ("input", "select", "textarea") and self.forms and a.get("name"):
            values = self.forms[-1].fields.setdefault(a["name"], [])
            if tag == "select":
                self._select = a["name"]
            elif a.get("value"):
                values.append(a["value"])
        elif tag == "option" and self.forms and self._select is not None:
            self.forms[-1].fields[self._select].append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def read(page: httpx.Response) -> _Reader:
    reader = _Reader()
    reader.feed(page.text)
    return reader


def route_of(path: str) -> str:
    """The route a console address belongs to: one form of each kind is fuzzed."""
    path = re.sub(r"/customers/[^/]+", "/customers/{account}", path)
    path = re.sub(r"/products/(?!\{)[^/]+", "/products/{code}", path)
    path = re.sub(r"/(records|deliveries)/(?!.*retry$)[^/]+$", r"/\1/{id}", path)
    return re.sub(r"/deliveries/[^/]+/retry", "/deliveries/{id}/retry", path)


def crawl(client: httpx.Client, limit: int = 80) -> tuple[dict[str, Form], set[str], list[str]]:
    """From the overview: one form of each route, the values the pages showed, the pages."""
    seen, queue, forms, values = set(), ["/console/"], {}, set()
    pages: list[str] = []
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        page = client.get(path)
        assert page.status_code == 200, (path, page.status_code, page.text[:300])
        pages.append(path)
        reader = read(page)
        for link in reader.links:
            target = urlsplit(urljoin(path, link))
            if target.netloc or not target.path.startswith("/console/"):
                continue
            if "/static/" in target.path:
                continue
            values.update(s for s in target.path.split("/")[2:] if s)
            address = target.path + (f"?{target.query}" if target.query else "")
            if address not in seen and route_of(target.path) not in {
                route_of(urlsplit(p).path) for p in seen if p.count("/") > 3
            }:
                queue.append(address)
        for form in reader.forms:
            action = urljoin(path, form.action or path)
            for options in form.fields.values():
                values.update(v for v in options if v)
            key = f"{form.method} {route_of(action)} " + ",".join(sorted(form.fields))
            if not action.endswith(NOT_FUZZED):
                forms.setdefault(key, Form(form.method, action, form.fields))
    return forms, values, pages


HOSTILE = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "9" * 5000,
        "-1",
        "1e308",
        "nan",
        "inf",
        "0.5",
        "2",
        "10",
        "9999-12-31T23:59",
        "0001-01-01T00:00",
        "2026-02-30T10:00",
        "2026-06-01T10:00+05:00",
        "90m",
        "25h",
        "99999999999d",
        "-3h",
        "ü" * 300,
        "<script>alert(1)</script>",
        "'; DROP TABLE usage_records; --",
        "%00",
        "../../etc/passwd",
        "123456789012",
        "\ud7ff",
        "𝕏" * 10,
    ]
)


def value_for(offered: list[str], known: list[str]) -> st.SearchStrategy[str]:
    choices: list[st.SearchStrategy[str]] = [HOSTILE, st.text(max_size=40)]
    if offered:
        choices += [st.sampled_from(offered)] * 3
    if known:
        choices.append(st.sampled_from(known))
    return st.one_of(*choices)


def mangled(action: str, known: list[str]) -> st.SearchStrategy[str]:
    """The form's own address, mostly; sometimes one segment of it replaced."""
    parts = action.split("/")
    editable = [i for i, p in enumerate(parts) if i > 1 and p and i < len(parts) - 1]
    if not editable:
        return st.just(action)

    def replace(i: int, by: str) -> str:
        return "/".join([*parts[:i], quote(by, safe="") or "x", *parts[i + 1 :]])

    other = st.builds(replace, st.sampled_from(editable), value_for([], known))
    return st.one_of(st.just(action), st.just(action), st.just(action), other)


def as_offered(form: Form) -> dict[str, str]:
    """The form's fields as its page fills them (the first value offered, else empty)."""
    return {name: (offered or [""])[0] for name, offered in form.fields.items() if name != "csrf"}


def submissions(form: Form, known: list[str]) -> st.SearchStrategy[tuple[str, dict[str, str]]]:
    fields = {
        name: value_for(offered, known) for name, offered in form.fields.items() if name != "csrf"
    }
    return st.tuples(
        mangled(form.action, known),
        st.fixed_dictionaries({}, optional=fields),  # type: ignore[arg-type]
    )


def state(server: Server) -> dict[str, Any]:
    """What the admin API shows of everything the console's actions can change."""
    with admin(server) as api:
        products = [p["product_code"] for p in api.get("/products").json()]
        shown: dict[str, Any] = {"controls": _steady(api.get("/test-controls").json())}
        for code in products:
            subscriptions = api.get(f"/products/{code}/subscriptions").json()
            shown[code] = subscriptions
            for s in subscriptions if code == CONTRACT else ():  # (its only entitlements)
                account = s["customer_aws_account_id"]
                shown[f"{code}/{account}"] = api.get(
                    f"/products/{code}/subscriptions/{account}/entitlements"
                ).json()
        shown["deliveries"] = api.get("/deliveries").json()
    return shown


def _steady(controls: dict[str, Any]) -> dict[str, Any]:
    """The test controls without the clock's reading (which moves while it is read)."""
    return {k: v for k, v in controls.items() if k not in ("service_time", "served_at")}


def answered_well(answer: httpx.Response, allowed: set[int], what: str) -> None:
    assert answer.status_code in allowed, (what, answer.status_code, answer.text[:400])
    for header in SECURITY_HEADERS:
        assert header.lower() in answer.headers, (what, header)
    if answer.status_code == 303:
        assert answer.headers["location"].startswith("/console/"), what
    else:
        assert answer.headers["content-type"].startswith("text/html"), (what, answer.headers)
        assert "Traceback" not in answer.text and "Internal Server Error" not in answer.text


@pytest.fixture(scope="module")
def fuzzed(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"console-fuzz-{store_kind}")
    url = new_database(request, store_kind, directory)
    srv = start_server(url, directory, "--test-controls", "--admin-token", TOKEN)
    add_products(  # a product with entitlements: its forms too
        srv,
        {
            "product_code": CONTRACT,
            "seller_account_id": SELLER,
            "type": "saas",
            "dimensions": ["seats", "tier"],
            "pricing": "contract",
        },
    )
    with admin(srv) as api:
        account = new_account()
        made = api.post(
            f"/products/{CONTRACT}/subscriptions",
            json={"customer_aws_account_id": account, "post_to_fulfillment_url": False},
        )
        assert made.status_code in (200, 201), made.text
        entitled = api.put(
            f"/products/{CONTRACT}/subscriptions/{account}/entitlements/seats",
            json={"value": "5", "type": "integer"},
        )
        assert entitled.status_code == 200, entitled.text
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser(fuzzed: Server) -> Iterator[httpx.Client]:
    with signed_in_client(fuzzed) as client:
        yield client


def test_the_crawl_reaches_every_kind_of_form(browser: httpx.Client) -> None:
    forms, known, pages = crawl(browser)
    routes = {f"{f.method} {route_of(urlsplit(f.action).path)}" for f in forms.values()}
    for expected in (
        "POST /console/products/{code}/subscribe",
        "POST /console/products/{code}/customers/{account}/cancel",
        "POST /console/products/{code}/customers/{account}/unsubscribe",
        "POST /console/products/{code}/customers/{account}/entitlements",
        "POST /console/test-controls/clock",
        "POST /console/test-controls/faults",
        "GET /console/records",
        "GET /console/usage",
        "GET /console/deliveries",
        "GET /console/products/{code}/customers",
    ):
        assert expected in routes, (expected, sorted(routes))
    assert len(pages) > 10 and len(known) > 10


class Shown:
    """What the admin API shows (`state`), read again only after an action that may have
    changed it: a refusal leaves it as it was, which the check after it reads anyway."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._known: dict[str, Any] | None = None

    def now(self) -> dict[str, Any]:
        if self._known is None:
            self._known = state(self._server)
        return self._known

    def refused(self, before: dict[str, Any], what: str) -> None:
        self._known = state(self._server)
        assert self._known == before, what

    def changed(self) -> None:
        self._known = None


def fuzz(form: Form, known: list[str], browser: httpx.Client, shown: Shown, token: str) -> int:
    """Submit the form `EXAMPLES` times, its fields and address drawn by hypothesis (with
    the session's CSRF token, or a forged one); each answer checked. How many refused."""
    refusals = 0

    @settings(
        max_examples=EXAMPLES,
        derandomize=not EXPLORING,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(submission=submissions(form, known), forged=st.booleans())
    @example(submission=(form.action, as_offered(form)), forged=False)  # as a person sends it
    def submit(submission: tuple[str, dict[str, str]], forged: bool) -> None:
        nonlocal refusals
        action, values = submission
        what = f"{form.method} {action} {values!r}"
        if form.method == "GET":
            answered_well(browser.get(action, params=values), PAGE_STATUSES, what)
            return
        before = shown.now()
        answer = browser.post(action, data={**values, "csrf": "forged" if forged else token})
        what += " (forged)" if forged else ""
        answered_well(answer, ACTION_STATUSES, what)
        if forged and action == form.action:
            assert answer.status_code == 403, what  # (else a 404 may come first)
        if answer.status_code >= 400:
            refusals += 1
            shown.refused(before, what)
        else:
            shown.changed()

    submit()
    return refusals


def test_every_form_answers_with_a_page_and_a_refusal_changes_nothing(
    browser: httpx.Client, fuzzed: Server
) -> None:
    forms, known_values, _ = crawl(browser)
    known = sorted(known_values)
    shown, token = Shown(fuzzed), csrf(browser)
    refusals = sum(fuzz(form, known, browser, shown, token) for _, form in sorted(forms.items()))
    assert refusals > 0  # (the refusals were made, and checked)
    assert browser.get("/console/").status_code == 200
    assert httpx.get(fuzzed.url + "/readyz").status_code == 200
