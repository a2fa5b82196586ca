"""`GET /metrics` of a real server with two worker processes, on both stores: one view of
both processes (Prometheus' text format, read with prometheus-client's own parser), in
step with what was sent; and the optional bearer token."""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from marketmeter.metrics import FLUSH_SECONDS
from tests.compat.conftest import Fresh, new_database, recent, start_server
from tests.compat.server import Server
from tests.factories import SAAS

pytestmark = pytest.mark.compat

TOKEN = "metrics-token-for-tests-01"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def two_workers(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"metrics-{store_kind}")
    url = new_database(request, store_kind, directory)
    server = start_server(url, directory, "--workers", "2", "--metrics-token", TOKEN)
    yield server
    server.stop()


def scrape(server: Server, token: str | None = TOKEN) -> tuple[int, str]:
    request = urllib.request.Request(server.url + "/metrics")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(server: Server) -> Samples:
    status, text = scrape(server)
    assert status == 200, text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_every_request_of_both_processes(two_workers: Server, fresh: Fresh) -> None:
    before = samples(two_workers)
    client = two_workers.client()
    at = recent()
    for _ in range(6):  # over fresh connections: both processes answer some
        account, _ = fresh.customer()
        record = {
            "Timestamp": at,
            "CustomerAWSAccountId": account,
            "Dimension": "users",
            "Quantity": 1,
        }
        out = two_workers.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=[record])
        assert out["Results"][0]["Status"] == "Success"
    for _ in range(3):
        with pytest.raises(ClientError):
            client.batch_meter_usage(ProductCode="nosuchproduct000000000001", UsageRecords=[])
    # Each process writes its counts for the others' scrapes every FLUSH_SECONDS.
    time.sleep(2 * FLUSH_SECONDS)
    after = samples(two_workers)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("marketmeter_requests_total", operation="BatchMeterUsage", outcome="ok") == 6
    errors = {
        labels: after[(name, labels)] - before.get((name, labels), 0.0)
        for name, labels in after
        if name == "marketmeter_requests_total" and ("outcome", "ok") not in labels
    }
    assert {dict(k)["outcome"]: v for k, v in errors.items() if v} == {
        "InvalidProductCodeException": 3
    }
    assert grew("marketmeter_request_duration_seconds_count", operation="BatchMeterUsage") == 9
    slowest = {"operation": "BatchMeterUsage", "le": "+Inf"}
    assert grew("marketmeter_request_duration_seconds_bucket", **slowest) == 9
    assert 0 < grew("marketmeter_request_duration_seconds_sum", operation="BatchMeterUsage") < 30
    assert grew("marketmeter_records_stored_total", store=two_workers.kind) == 6
    assert grew("marketmeter_group_units_count", store=two_workers.kind) >= 1
    assert grew("marketmeter_group_units_sum", store=two_workers.kind) >= 6
    assert value(after, "marketmeter_outbox_backlog") >= 0
    # Every scrape, whichever process answers it, tells the same totals.
    again = samples(two_workers)
    for key in ("marketmeter_requests_total", "marketmeter_records_stored_total"):
        assert {k: v for k, v in again.items() if k[0] == key} == {
            k: v for k, v in after.items() if k[0] == key
        }


def test_metrics_need_the_token_when_one_is_set(two_workers: Server) -> None:
    assert scrape(two_workers, token=None)[0] == 401
    assert scrape(two_workers, token="not-the-token")[0] == 401
    status, text = scrape(two_workers)
    assert status == 200
    assert "# TYPE marketmeter_outbox_backlog gauge" in text  # there from the start


def test_the_sample_dashboard_asks_only_for_metrics_the_server_has(
    two_workers: Server, fresh: Fresh
) -> None:
    """docs/examples/grafana-dashboard.json: every metric its queries name is exposed."""
    import json
    import re
    from pathlib import Path

    dashboard = json.loads(
        (Path(__file__).resolve().parents[2] / "docs/examples/grafana-dashboard.json").read_text()
    )
    # Something to count, whichever tests of this file ran before on this server.
    at, (account, _) = recent(), fresh.customer()
    record = {"Timestamp": at, "CustomerAWSAccountId": account, "Dimension": "users", "Quantity": 1}
    two_workers.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=[record])
    time.sleep(2 * FLUSH_SECONDS)  # (written for the other process's scrape by then)
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    named = {m for e in exprs for m in re.findall(r"\bmarketmeter_[a-z_]+", e)}
    exposed = {name for name, _ in samples(two_workers)} | {
        line.split()[2] for line in scrape(two_workers)[1].splitlines() if line.startswith("# TYPE")
    }
    assert named, "the dashboard queries nothing"
    assert named <= exposed, named - exposed


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_removes_its_metrics_directory_when_stopped_by_sigterm(
    tmp_path: Path, workers: str
) -> None:
    """`serve` makes the processes' metrics directory in the temporary directory, and a
    SIGTERM (what `docker stop` and systemd send) removes it with the rest."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    server = start_server(
        f"sqlite:///{tmp_path / 'm.db'}",
        tmp_path,
        "--workers",
        workers,
        env={"TMPDIR": str(temporary)},
    )
    try:
        made = list(temporary.glob("marketmeter-metrics-*"))
        assert len(made) == 1, made
    finally:
        server.stop()
    assert server.process is not None
    assert server.process.returncode in (0, 128 + signal.SIGTERM)  # (not killed by it)
    assert list(temporary.glob("marketmeter-metrics-*")) == []
