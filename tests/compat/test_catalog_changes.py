"""A catalog change reaches every server process within a second: servers of 2 and 4
workers on each store, every worker's cache warm, the change made by another process
(the command line)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import new_database, recent, start_server
from tests.compat.raw import call
from tests.compat.server import Server, cancel_subscription, marketmeter
from tests.factories import SAAS

pytestmark = pytest.mark.compat

REQUESTS = 48  # on connections of their own: every worker answers some of them


@pytest.fixture(scope="module", params=[2, 4])
def workers_server(
    request: pytest.FixtureRequest, store_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    workers = int(request.param)
    directory = tmp_path_factory.mktemp(f"server-{workers}w-{store_kind}")
    database_url = new_database(request, store_kind, directory)
    server = start_server(database_url, directory, "--workers", str(workers))
    yield server
    server.stop()


def statuses(server: Server, account: str, at: Any) -> list[str]:
    """The status of one record, sent REQUESTS times at once, each on a new connection."""
    payload = {
        "ProductCode": SAAS,
        "UsageRecords": [
            {
                "Timestamp": int(at.timestamp()),
                "CustomerAWSAccountId": account,
                "Dimension": "users",
                "Quantity": 1,
            }
        ],
    }

    def one(_: int) -> str:
        response = call(server, "BatchMeterUsage", payload)
        assert response.status_code == 200, response.text
        return str(response.json()["Results"][0]["Status"])

    with ThreadPoolExecutor(max_workers=12) as pool:
        return list(pool.map(one, range(REQUESTS)))


def test_a_cancelled_subscription_reaches_every_worker_within_a_second(
    workers_server: Server,
) -> None:
    server = workers_server
    account, _ = server.fresh.customer()
    at = recent()
    assert set(statuses(server, account, at)) == {"Success"}  # every worker has it cached
    cancel_subscription(server, account)
    time.sleep(1.0)
    assert set(statuses(server, account, at)) == {"CustomerNotSubscribed"}


def test_a_reactivated_subscription_reaches_every_worker_within_a_second(
    workers_server: Server, tmp_path: Path
) -> None:
    """A catalog file that reopens a cancelled subscription (an "active" status)."""
    server = workers_server
    account, _ = server.fresh.customer()
    at = recent()
    cancel = tmp_path / "cancel.yaml"
    entry = f"product_code: {SAAS}\n    customer_aws_account_id: '{account}'\n"
    cancel.write_text(f"subscriptions:\n  - {entry}    status: cancelled\n")
    marketmeter("catalog", "apply", "--database", server.database_url, str(cancel))
    assert set(statuses(server, account, at)) == {"CustomerNotSubscribed"}
    reopen = tmp_path / "reopen.yaml"
    reopen.write_text(f"subscriptions:\n  - {entry}    status: active\n")
    marketmeter("catalog", "apply", "--database", server.database_url, str(reopen))
    time.sleep(1.0)
    assert set(statuses(server, account, at)) == {"Success"}
