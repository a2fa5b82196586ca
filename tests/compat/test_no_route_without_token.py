"""No route of the admin API or the console answers without the admin token: every
operation of the admin API's OpenAPI document refuses a request without it, or with a
wrong one (401), and every console page and action sends a visitor without a session to
sign in — read from the routes themselves, so a route added later is checked too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount, Route

from marketmeter.config import Settings
from marketmeter.console.app import PREFIX, ConsoleApp
from marketmeter.services import create_service
from marketmeter.store.sqlite import SqliteStore
from tests.compat.conftest import new_database, start_server
from tests.compat.server import Server

pytestmark = pytest.mark.compat

TOKEN = "no-route-without-it-000001"


@pytest.fixture(scope="module")
def guarded(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"guarded-{store_kind}")
    url = new_database(request, store_kind, directory)
    server = start_server(url, directory, "--test-controls", "--admin-token", TOKEN)
    yield server
    server.stop()


def filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_no_admin_operation_answers_without_the_token(guarded: Server) -> None:
    document = httpx.get(
        guarded.url + "/admin/v1/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    operations = [(m.upper(), p) for p, ops in document["paths"].items() for m in ops]
    assert len(operations) > 10
    for method, path in operations:
        for headers in ({}, {"Authorization": "Bearer not-the-token-0000000000"}):
            answer = httpx.request(method, guarded.url + filled(path), headers=headers, json={})
            assert answer.status_code == 401, (method, path, headers, answer.text[:200])
    assert httpx.get(guarded.url + "/admin/v1/openapi.json").status_code == 401


def console_routes(tmp_path: Path) -> list[tuple[str, str]]:
    store = SqliteStore(tmp_path / "routes.db")
    try:
        app = ConsoleApp(create_service(Settings(), store), None)
        found = []
        for route in app._router.routes:
            if isinstance(route, Route) and not route.path.endswith("/sign-in"):
                found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
            elif not isinstance(route, Mount | Route):
                raise AssertionError(f"a route of a kind this test does not know: {route}")
        return found
    finally:
        store.close()


def test_no_console_page_or_action_answers_without_a_session(
    guarded: Server, tmp_path: Path
) -> None:
    routes = console_routes(tmp_path)
    assert len(routes) > 10
    for method, path in routes:
        if path == PREFIX:
            continue  # the overview's address, which redirects to it
        answer = httpx.request(method, guarded.url + filled(path), data={"csrf": "x"})
        assert answer.status_code == 303, (method, path, answer.status_code)
        assert answer.headers["location"].endswith(PREFIX + "/sign-in"), (method, path)


def test_an_address_that_is_no_page_gets_a_page_saying_so(guarded: Server) -> None:
    for path in ("/console/nowhere", "/console/products/a/b/c/d/e/f"):
        answer = httpx.get(guarded.url + path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "No page is at this address" in answer.text
        assert answer.headers["x-frame-options"] == "DENY"
