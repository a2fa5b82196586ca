"""Clients that send their headers or body slowly, open connections and send nothing, or
send an endless chunked body, cannot stop a server from answering others: it cuts each
off after its deadline (`--request-timeout`), ends an endless body at 1 MB with 413, and
meanwhile answers every request of a normal client. (How much slower those answers are
is measured in `bench/slow_clients.py`, not asserted here: speed is never asserted in a
test — see docs/performance.md.)"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.compat.conftest import Fresh, new_database, recent, start_server
from tests.compat.server import Server
from tests.compat.slow_clients import launch
from tests.factories import SAAS

pytestmark = pytest.mark.compat

TIMEOUT = 4.0  # the server's --request-timeout: the clients stay while the traffic is timed
REQUESTS = 200


def p99(server: Server, batch: dict[str, Any]) -> float:
    """The normal traffic: one seller sending (and re-sending) a batch, one at a time, each
    answered Success (no retries: a failure fails the test); the p99 of its latencies."""
    client = server.client()
    client.batch_meter_usage(**batch)  # a connection open, the record stored
    took = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        out = client.batch_meter_usage(**batch)
        took.append(time.perf_counter() - started)
        assert out["Results"][0]["Status"] == "Success"
    return sorted(took)[int(REQUESTS * 0.99) - 1]


def test_slow_idle_and_endless_clients_are_cut_off_and_the_others_answered(
    store_kind: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fresh: Fresh,
) -> None:
    directory = tmp_path_factory.mktemp(f"slow-{store_kind}")
    url = new_database(request, store_kind, directory)
    server = start_server(url, directory, "--request-timeout", str(TIMEOUT))
    account, _ = fresh.customer()
    record = {
        "Timestamp": recent(),
        "CustomerAWSAccountId": account,
        "Dimension": "users",
        "Quantity": 1,
    }
    batch = {"ProductCode": SAAS, "UsageRecords": [record]}
    report = directory / "slow-clients.json"
    try:
        unloaded = p99(server, batch)
        attack = launch(server.port, report, TIMEOUT * 3)
        time.sleep(1.0)  # all connected (and the first of them sent a request), trickling
        loaded = p99(server, batch)
        assert attack.wait(timeout=60) == 0
    finally:
        server.stop()
    found = json.loads(report.read_text())
    print(f"normal traffic p99: {unloaded * 1000:.1f} ms alone, {loaded * 1000:.1f} ms attacked")
    for kind in ("idle", "slowloris", "slow_body"):
        clients = found[kind]
        assert clients["failed_to_run"] == [], clients
        # every one cut off by the server, none later than its deadlines allow
        assert clients["closed_by_server"] == clients["clients"], (kind, clients)
        assert clients["longest_open"] < 2 * TIMEOUT + 1.0, (kind, clients)
    endless = found["endless"]
    assert endless["closed_by_server"] == endless["clients"], endless
    # Ended by the 413, at once, not by the deadline — and read by the client, though it
    # keeps sending (the server's lingering close: `server/one_write.py`).
    assert endless["statuses"] == ["HTTP/1.1 413 Request Entity Too Large"], endless
    assert endless["longest_open"] < TIMEOUT, endless


def test_past_max_connections_a_request_gets_503_and_is_served_once_they_close(
    store_kind: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fresh: Fresh,
) -> None:
    directory = tmp_path_factory.mktemp(f"limit-{store_kind}")
    url = new_database(request, store_kind, directory)
    server = start_server(url, directory, "--max-connections", "30", "--request-timeout", "30")
    account, _ = fresh.customer()
    client = server.client()
    record = {"Timestamp": recent(), "CustomerAWSAccountId": account, "Dimension": "users"}
    batch = {"ProductCode": SAAS, "UsageRecords": [{**record, "Quantity": 1}]}
    held: list[socket.socket] = []
    try:
        for _ in range(40):  # idle connections, past the limit
            held.append(socket.create_connection(("127.0.0.1", server.port)))
        time.sleep(0.5)  # (all accepted)
        with pytest.raises(ClientError) as refused:
            client.batch_meter_usage(**batch)
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        for connection in held:
            connection.close()
        held.clear()
        deadline = time.monotonic() + 10
        while True:  # (the server sees the closes at once; give it a moment regardless)
            try:
                out = client.batch_meter_usage(**batch)
                break
            except ClientError:
                assert time.monotonic() < deadline, "still refused after the connections closed"
                time.sleep(0.2)
        assert out["Results"][0]["Status"] == "Success"
        # and the refused request stored nothing: the record is there once
        mine = [r for r in server.records() if r["CustomerAWSAccountId"] == account]
        assert len(mine) == 1, mine
    finally:
        for connection in held:
            connection.close()
        server.stop()
