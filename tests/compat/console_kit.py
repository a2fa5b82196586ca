"""What the console's tests share: signing in over HTTP, the CSRF token of a page, a
record sent with boto3, a product added through the admin API."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx

from tests.compat.conftest import recent
from tests.compat.server import Server
from tests.factories import SAAS

TOKEN = "console-token-for-tests-01"


def sign_in_form(client: httpx.Client) -> str:
    page = client.get("/console/sign-in")
    assert page.status_code == 200
    found = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def signed_in(client: httpx.Client) -> str:
    """Sign in; the session's CSRF token (from the overview's sign-out form)."""
    nonce = sign_in_form(client)
    answer = client.post("/console/sign-in", data={"nonce": nonce, "token": TOKEN})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    page = client.get("/console/")
    assert page.status_code == 200, page.text
    return csrf_of(page)


@contextmanager
def signed_in_client(server: Server) -> Iterator[httpx.Client]:
    """An HTTP client with a console session (it keeps cookies, follows no redirect)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        signed_in(client)
        yield client


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def csrf(client: httpx.Client) -> str:
    """The session's CSRF token, as a page of the signed-in client carries it now."""
    return csrf_of(client.get("/console/"))


def add_products(server: Server, *products: dict[str, Any]) -> None:
    """Products (catalog entries) added through the admin API."""
    answer = httpx.post(
        server.url + "/admin/v1/catalog",
        json={"products": list(products)},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 200, answer.text


_accounts = itertools.count(int(time.time() * 1000) % 10**9)


def new_account() -> str:
    """A 12-digit AWS account ID no catalog holds (a buyer to subscribe)."""
    return f"8{next(_accounts) % 10**11:011d}"


def admin(server: Server) -> httpx.Client:
    return httpx.Client(
        base_url=server.url + "/admin/v1",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )


def meter(
    server: Server,
    account: str,
    quantity: int,
    *,
    dimension: str = "users",
    hours_ago: int = 0,
    tag: str | None = None,
    product: str = SAAS,
) -> str:
    """One record sent with boto3 (tagged `team=tag` when given); its id."""
    record: dict[str, Any] = {
        "Timestamp": recent() - timedelta(hours=hours_ago),
        "CustomerAWSAccountId": account,
        "Dimension": dimension,
        "Quantity": quantity,
    }
    if tag is not None:
        record["UsageAllocations"] = [
            {"AllocatedUsageQuantity": quantity, "Tags": [{"Key": "team", "Value": tag}]}
        ]
    answer = server.client().batch_meter_usage(ProductCode=product, UsageRecords=[record])
    result = answer["Results"][0]
    assert result["Status"] == "Success", result
    return str(result["MeteringRecordId"])
