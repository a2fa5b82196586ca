"""kill -9 under load: every record acknowledged before the crash is stored exactly once,
no request is half-written, retrying what was not acknowledged stores each slot once, and
the usage reports sum every stored record once (the crash may come mid-fold).

Clients write continuously to `serve --workers 2` (and 4); when enough replies have come back the
whole process group is killed with SIGKILL; the server is restarted on the same database.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from marketmeter.domain.usage import usage_report
from marketmeter.store.factory import open_store
from tests.compat.conftest import Fresh, new_database, start_server
from tests.compat.server import Server, free_port
from tests.factories import AMI, SAAS

pytestmark = pytest.mark.compat

QUICK = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10)


@dataclass
class Request:
    kind: str  # "batch" | "meter"
    key: str
    params: dict[str, Any]
    slots: list[tuple[Any, ...]]
    acked_ids: list[str] = field(default_factory=list)


def plan(fresh: Fresh) -> list[Request]:
    top = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    requests: list[Request] = []
    accounts = [fresh.customer()[0] for _ in range(60)]
    slots = [
        (account, dimension, top - timedelta(hours=h) + timedelta(minutes=5))
        for h in range(1, 21)
        for dimension in ("users", "storage_gb")
        for account in accounts
    ]
    for i in range(0, len(slots), 25):
        chunk = slots[i : i + 25]
        records: list[dict[str, Any]] = [
            {
                "Timestamp": at,
                "CustomerAWSAccountId": account,
                "Dimension": dimension,
                "Quantity": n,
            }
            for n, (account, dimension, at) in enumerate(chunk)
        ]
        for n, record in enumerate(records):
            if n % 3 == 1:  # (logged apart from the others until folded)
                tags = [{"Key": "team", "Value": f"t{n % 2}"}]
                record["UsageAllocations"] = [{"AllocatedUsageQuantity": n, "Tags": tags}]
        requests.append(
            Request("batch", "seller", {"ProductCode": SAAS, "UsageRecords": records}, chunk)
        )
    meter_keys = [fresh.buyer_key() for _ in range(40)]
    for key in meter_keys:
        for h in range(1, 5):
            for dimension in ("gb", "vcpu_hours"):
                at = top - timedelta(hours=h) + timedelta(minutes=7)
                params = {
                    "ProductCode": AMI,
                    "Timestamp": at,
                    "UsageDimension": dimension,
                    "UsageQuantity": h,
                }
                requests.append(Request("meter", key, params, [(key, dimension, at)]))
    # Interleave the two kinds so that both are in flight when the crash comes.
    batches = [r for r in requests if r.kind == "batch"]
    meters = [r for r in requests if r.kind == "meter"]
    mixed: list[Request] = []
    while batches or meters:
        if batches:
            mixed.append(batches.pop(0))
        mixed.extend(meters[:2])
        del meters[:2]
    return mixed


def send(server: Server, clients: dict[str, Any], request: Request) -> list[str] | None:
    """The ids acknowledged by the reply, or None when there was no reply."""
    client = clients.setdefault(request.key, server.client(request.key, config=QUICK))
    try:
        if request.kind == "batch":
            out = client.batch_meter_usage(**request.params)
            assert [r["Status"] for r in out["Results"]] == ["Success"] * len(request.slots)
            return [r["MeteringRecordId"] for r in out["Results"]]
        return [client.meter_usage(**request.params)["MeteringRecordId"]]
    except (ClientError, BotoCoreError):
        return None


def stored_ids(server: Server) -> list[str]:
    return [str(r[0]) for r in server.sql("SELECT record_id FROM metering_records")]


def assert_reports_sum_the_records(server: Server) -> None:
    """Each product's usage report, by dimension and by tag, has the records' own sums."""
    top = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    store = open_store(server.database_url)
    try:
        for product in (SAAS, AMI):
            expected = {
                str(d): (int(n), int(m))
                for d, n, m in server.sql(
                    "SELECT dimension, COUNT(*), SUM(quantity_micros) FROM metering_records "
                    "WHERE product_code = ? GROUP BY dimension",
                    (product,),
                )
            }
            span = {"start": top - timedelta(days=2), "end": top + timedelta(hours=1)}
            got: dict[str, tuple[int, int]] = {}
            for row in usage_report(store, product, by="month", group=["dimension"], **span).rows:
                n, micros = got.get(str(row.keys["dimension"]), (0, 0))
                got[str(row.keys["dimension"])] = (n + row.records, micros + _micros(row.quantity))
            assert got == expected
            tagged = usage_report(store, product, by="month", group=["tag:team"], **span)
            assert _micros(tagged.total) == sum(m for _, m in expected.values())
    finally:
        store.close()


def _micros(quantity: Decimal) -> int:
    return int(quantity * 1_000_000)


@pytest.mark.parametrize("workers", [2, 4])
def test_kill_9_under_load_loses_nothing_acknowledged_and_duplicates_nothing(
    store_kind: str,
    workers: int,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fresh: Fresh,
) -> None:
    directory = tmp_path_factory.mktemp(f"crash-{store_kind}-{workers}")
    database = new_database(request, store_kind, directory)
    server = start_server(database, directory, "--workers", str(workers))
    requests = plan(fresh)
    work: queue.Queue[Request] = queue.Queue()
    for r in requests:
        work.put(r)
    acked = threading.Semaphore(0)
    stop = threading.Event()

    def writer() -> None:
        clients: dict[str, Any] = {}
        while not stop.is_set():
            try:
                item = work.get_nowait()
            except queue.Empty:
                return
            ids = send(server, clients, item)
            if ids is not None:
                item.acked_ids = ids
                acked.release()

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    count = 0
    while count < 60 and time.monotonic() < deadline:  # kill mid-load, after 60 replies
        if acked.acquire(timeout=0.5):
            count += 1
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(timeout=30)

    acknowledged = [i for r in requests for i in r.acked_ids]
    unacknowledged = [r for r in requests if not r.acked_ids]
    assert acknowledged, "nothing was acknowledged before the crash"
    assert unacknowledged, "the crash came after the load: nothing was in flight"

    server.port = free_port()
    server.start()
    try:
        stored = stored_ids(server)
        lost = set(acknowledged) - set(stored)
        duplicated = len(stored) - len(set(stored))
        # Atomic requests: a batch is stored whole or not at all.
        by_slot = {
            (str(a), str(d), int(h)): str(i)
            for a, d, h, i in server.sql(
                "SELECT customer_aws_account_id, dimension, hour, record_id FROM metering_records "
                "WHERE resource = ''"
            )
        }
        half_written = [
            r
            for r in requests
            if r.kind == "batch"
            and 0
            < sum(
                (a, d, int(at.timestamp()) // 3600 * 3_600_000) in by_slot for a, d, at in r.slots
            )
            < len(r.slots)
        ]
        print(
            f"\n[{store_kind}] crash: {len(acknowledged)} records acknowledged, {len(stored)} stored, "
            f"{len(lost)} lost, {duplicated} duplicated, {len(half_written)} half-written requests"
        )
        assert lost == set()
        assert duplicated == 0
        assert half_written == []

        # Retry everything, as SDKs would: acknowledged requests get their ids back, the
        # others are stored now, and every slot holds exactly one record.
        clients: dict[str, Any] = {}
        for r in requests:
            ids = send(server, clients, r)
            assert ids is not None
            if r.acked_ids:
                assert ids == r.acked_ids
        final = stored_ids(server)
        assert len(final) == len(set(final)) == sum(len(r.slots) for r in requests)
        assert set(acknowledged) <= set(final)
        assert_reports_sum_the_records(server)
    finally:
        server.stop()
