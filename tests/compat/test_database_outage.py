"""PostgreSQL stopped and started under load: requests meanwhile fail with
InternalServiceErrorException (HTTP 500, which SDKs retry), the server recovers by itself,
and the retried requests succeed without duplicates."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.compat.conftest import Fresh, start_server
from tests.compat.test_crash import Request, plan
from tests.postgres import TemporaryPostgres

pytestmark = pytest.mark.compat

QUICK = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=15)


def test_postgresql_outage_under_load(
    own_postgres: TemporaryPostgres, tmp_path_factory: pytest.TempPathFactory, fresh: Fresh
) -> None:
    directory = tmp_path_factory.mktemp("outage")
    url = own_postgres.create_database("outage") + "?pool_timeout=1"
    server = start_server(url, directory, "--workers", "2")
    requests = plan(fresh)
    errors: Counter[tuple[str, int]] = Counter()
    lock = threading.Lock()
    done = threading.Semaphore(0)
    next_index = iter(range(len(requests)))

    def retry_until_stored(clients: dict[str, Any], r: Request) -> None:
        client = clients.setdefault(r.key, server.client(r.key, config=QUICK))
        while True:
            try:
                if r.kind == "batch":
                    out = client.batch_meter_usage(**r.params)
                    r.acked_ids = [x["MeteringRecordId"] for x in out["Results"]]
                else:
                    r.acked_ids = [client.meter_usage(**r.params)["MeteringRecordId"]]
                return
            except ClientError as exc:
                with lock:
                    errors[
                        (
                            exc.response["Error"]["Code"],
                            exc.response["ResponseMetadata"]["HTTPStatusCode"],
                        )
                    ] += 1
                time.sleep(0.1)

    def writer() -> None:
        clients: dict[str, Any] = {}
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            retry_until_stored(clients, requests[i])
            done.release()
            time.sleep(0.005)  # a steady load, not a flood: the outage must come mid-run

    threads = [threading.Thread(target=writer) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        for _ in range(40):
            assert done.acquire(timeout=30)
        own_postgres.pg_ctl("stop")
        time.sleep(1.5)
        own_postgres.pg_ctl("start")
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "requests did not recover after the outage"

        print(f"\noutage: errors seen {dict(errors)}")
        assert errors, "no request met the outage"
        assert set(errors) == {("InternalServiceErrorException", 500)}
        stored = [str(r[0]) for r in server.sql("SELECT record_id FROM metering_records")]
        assert len(stored) == len(set(stored)) == sum(len(r.slots) for r in requests)
        assert {i for r in requests for i in r.acked_ids} == set(stored)
        assert server.process is not None
        assert server.process.poll() is None, "the server died"
    finally:
        server.stop()
