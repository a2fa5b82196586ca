"""The admin API against its own OpenAPI document: schemathesis generates requests for
every operation from the document (valid and invalid), sends them to a live server, and
checks each answer — never a 5xx, only documented statuses, content types, headers and
bodies that match their schemas, invalid requests refused. On both stores."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from marketmeter.admin.routes import ROUTES
from tests.compat.conftest import new_database, start_server
from tests.compat.server import Server

# Every check but one: "positive data acceptance" wants every request the schema admits
# answered 2xx, and some are refused by rules a JSON Schema cannot say (a subscription to
# a product of the catalog, a catalog entry naming an account it defines, an entitlement
# value of the dimension's type) — with 422, documented on those operations.
EXCLUDED = [schemathesis.checks.positive_data_acceptance]

TOKEN = "openapi-check-token-000001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def live(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"openapi-{store_kind}")
    srv = start_server(
        new_database(request, store_kind, directory),
        directory,
        "--test-controls",
        "--admin-token",
        TOKEN,
    )
    yield srv
    srv.stop()


def document(server: Server) -> dict[str, Any]:
    response = httpx.get(server.url + "/admin/v1/openapi.json", headers=AUTH)
    assert response.status_code == 200
    return dict(response.json())


def test_the_document_lists_every_route(live: Server) -> None:
    doc = document(live)
    assert doc["openapi"] == "3.1.0"
    listed = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert listed == {(r.method, "/admin/v1" + r.path) for r in ROUTES}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            assert "401" in op["responses"], (method, path)
            assert op["summary"]


def test_every_operation_answers_as_documented(live: Server) -> None:
    schema = schemathesis.openapi.from_dict(document(live))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(ROUTES)
    failures: list[str] = []
    for operation in operations:

        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            case.call_and_validate(base_url=live.url, headers=AUTH, excluded_checks=EXCLUDED)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
