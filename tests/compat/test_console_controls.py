"""The console on a server started with `--test-controls`, over real HTTP on both stores:
the clock and the faults set from their page (boto3 sees the faults), a failed delivery
retried from the Deliveries page until a real local endpoint receives it, and the
overview's failed deliveries and warnings. Each test puts the clock back."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.compat.conftest import new_database, recent, start_server
from tests.compat.console_kit import TOKEN, admin, csrf, new_account, signed_in_client
from tests.compat.receiver import Receiver
from tests.compat.server import Server
from tests.factories import AMI, SAAS

T = TypeVar("T")


@pytest.fixture(scope="module")
def controlled(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"console-controls-{store_kind}")
    srv = start_server(
        new_database(request, store_kind, directory),
        directory,
        "--admin-token",
        TOKEN,
        "--test-controls",
    )
    yield srv
    srv.stop()


@pytest.fixture
def browser(controlled: Server) -> Iterator[httpx.Client]:
    with signed_in_client(controlled) as client:
        yield client
        with admin(controlled) as api:  # whatever the test did, the next starts from here
            api.delete("/test-controls/clock")
            api.delete("/test-controls/faults")


def eventually(check: Callable[[], T], what: str, timeout: float = 20.0) -> T:
    """`check()`'s first truthy answer (servers follow the controls within a second)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def service_time(page: httpx.Response) -> datetime:
    found = re.search(r'<strong id="service-time">([^<]+)</strong>', page.text)
    assert found, page.text
    return datetime.fromisoformat(found.group(1))


def test_the_clock_is_set_advanced_and_put_back(browser: httpx.Client, controlled: Server) -> None:
    page = browser.get("/console/test-controls")
    assert page.status_code == 200
    assert abs(service_time(page) - datetime.now(UTC)) < timedelta(minutes=1)
    url = "/console/test-controls/clock"
    moved = browser.post(
        url, data={"csrf": csrf(browser), "action": "set", "at": "2030-01-02T03:04"}
    )
    assert moved.status_code == 200, moved.text
    assert abs(service_time(moved) - datetime(2030, 1, 2, 3, 4, tzinfo=UTC)) < timedelta(minutes=1)
    with admin(controlled) as api:
        assert api.get("/test-controls").json()["service_time"].startswith("2030-01-02T03:0")
    later = browser.post(url, data={"csrf": csrf(browser), "action": "advance", "by": "2h"})
    assert service_time(later).strftime("%Y-%m-%dT%H") == "2030-01-02T05"
    bad = browser.post(url, data={"csrf": csrf(browser), "action": "advance", "by": "2 parsecs"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    no_time = browser.post(url, data={"csrf": csrf(browser), "action": "set", "at": ""})
    assert no_time.status_code == 422
    unchanged = service_time(browser.get("/console/test-controls"))
    assert unchanged.strftime("%Y-%m-%dT%H") == "2030-01-02T05"
    # the overview, by the marketplace's clock, follows (within a second)
    eventually(
        lambda: "By the marketplace's clock: 2030-01-02T05" in browser.get("/console/").text,
        "the overview's clock travelled",
    )
    back = browser.post(url, data={"csrf": csrf(browser), "action": "reset"})
    assert abs(service_time(back) - datetime.now(UTC)) < timedelta(minutes=1)
    assert browser.post(url, data={"action": "reset"}).status_code == 403  # no CSRF token


def meter_once(server: Server) -> str | None:
    """A MeterUsage dry run by the seller: its error code (DryRunOperation when it would
    have been accepted)."""
    try:
        server.client().meter_usage(
            ProductCode=AMI,
            Timestamp=recent(),
            UsageDimension="gb",
            UsageQuantity=1,
            DryRun=True,
        )
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return None


def test_faults_set_on_the_page_reach_boto3_until_cleared(
    browser: httpx.Client, controlled: Server
) -> None:
    url = "/console/test-controls/faults"
    bad = browser.post(url, data={"csrf": csrf(browser), "action": "set", "throttle_rate": "2"})
    assert bad.status_code == 422 and "fraction from 0 to 1" in bad.text
    assert "None: every call is answered normally." in browser.get("/console/test-controls").text
    page = browser.post(
        url,
        data={"csrf": csrf(browser), "action": "set", "operation": "MeterUsage", "throttle": "1"},
    )
    assert page.status_code == 200 and "always throttled" in page.text
    eventually(lambda: meter_once(controlled) == "ThrottlingException", "MeterUsage is throttled")
    cleared = browser.post(url, data={"csrf": csrf(browser), "action": "clear"})
    assert "None: every call is answered normally." in cleared.text
    eventually(lambda: meter_once(controlled) == "DryRunOperation", "MeterUsage answers again")


def test_a_failed_delivery_is_retried_from_the_deliveries_page(
    browser: httpx.Client, controlled: Server
) -> None:
    receiver = Receiver(status=500)
    try:
        path = f"/events-{new_account()}"
        with admin(controlled) as api:
            target = api.post(
                "/event-targets", json={"url": receiver.url(path), "product_code": SAAS}
            )
            assert target.status_code == 201, target.text
        account = new_account()
        subscribed = browser.post(
            f"/console/products/{SAAS}/subscribe", data={"csrf": csrf(browser), "account": account}
        )
        assert subscribed.status_code == 200
        assert receiver.wait_for(path, 2), "the first attempts"
        # A day later every attempt is spent: the next failure is final.
        browser.post(
            "/console/test-controls/clock",
            data={"csrf": csrf(browser), "action": "advance", "by": "25h"},
        )

        def failed_ones() -> list[str]:
            page = browser.get("/console/deliveries", params={"failed": "1"}).text
            return re.findall(
                r'<details class="card delivery" id="d-([^"]+)">\s*<summary>\s*'
                r'<span class="state delivery-failed">',
                page,
            )

        failed = eventually(failed_ones, "both deliveries failed for good")
        overview = browser.get("/console/").text
        count = re.search(r"Failed deliveries <span class=\"muted\">\((\d+)\)", overview)
        assert count and int(count.group(1)) >= len(failed)
        assert "Purchase Agreement Created - Proposer" in overview
        receiver.status = 200
        answered_before = len(receiver.at(path))
        retried = browser.post(
            f"/console/deliveries/{failed[0]}/retry", data={"csrf": csrf(browser)}
        )
        assert retried.status_code == 200, retried.text
        assert "is due again now" in retried.text
        eventually(lambda: len(receiver.at(path)) > answered_before, "the retry was sent")

        def delivered() -> bool:
            page = browser.get("/console/deliveries").text
            found = re.search(
                rf'id="d-{failed[0]}">\s*<summary>\s*<span class="state delivery-([a-z]+)">', page
            )
            return bool(found) and found.group(1) == "delivered"

        eventually(delivered, "the retried delivery is delivered")
        again = browser.post(f"/console/deliveries/{failed[0]}/retry", data={"csrf": csrf(browser)})
        assert again.status_code == 409 and "is delivered" in again.text
        unknown = browser.post("/console/deliveries/nope/retry", data={"csrf": csrf(browser)})
        assert unknown.status_code == 404
    finally:
        receiver.close()


def warning_count(browser: httpx.Client) -> int:
    found = re.search(
        r'Warnings, last 24 hours <span class="muted">\((\d+)\)', browser.get("/console/").text
    )
    assert found
    return int(found.group(1))


def test_the_overview_warns_of_hours_subscribers_missed(
    browser: httpx.Client, controlled: Server
) -> None:
    """Every subscriber of the catalog (and one subscribed here) sent nothing: once hours
    have closed, each has a missed-hours warning."""
    account = new_account()
    browser.post(
        f"/console/products/{SAAS}/subscribe", data={"csrf": csrf(browser), "account": account}
    )
    with admin(controlled) as api:
        subscribers = len(api.get(f"/products/{SAAS}/subscriptions").json())
    before = warning_count(browser)
    browser.post(
        "/console/test-controls/clock",
        data={"csrf": csrf(browser), "action": "advance", "by": "3h"},
    )
    eventually(lambda: warning_count(browser) >= before + subscribers, "missed-hours warnings")
    page = browser.get("/console/").text
    shown = re.findall(r'<span class="state warning-missed-hours">', page)
    assert 1 <= len(shown) <= 10
    assert "sent no record for" in page
    assert "more: <code>marketmeter usage check</code>" in page
