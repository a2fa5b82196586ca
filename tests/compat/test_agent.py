"""The metering agent against a real server process (two workers, test controls): what
the server stores equals what was recorded — through throttling, 500s and unprocessed
records; a recording process killed with SIGKILL loses at most its last second and never
counts twice; an outage longer than a record's window ends with the record expired, a
shorter one delivered."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from marketmeter.agent import Outcome, UsageMeter
from marketmeter.client import MarketplaceMetering
from tests.compat.conftest import new_database, start_server
from tests.compat.server import Server, free_port, marketmeter
from tests.factories import SAAS

pytestmark = [pytest.mark.compat, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def aws(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"agent-{store_kind}")
    server = start_server(
        new_database(request, store_kind, directory), directory, "--workers", "2", "--test-controls"
    )
    yield server
    server.stop()


def client(server: Server, url: str | None = None) -> MarketplaceMetering:
    key_id, secret, _ = server.keys["seller"]
    return MarketplaceMetering(
        endpoint_url=url or server.url, aws_access_key_id=key_id, aws_secret_access_key=secret
    )


def controls(server: Server, *args: str) -> None:
    marketmeter(*args[:2], "--database", server.database_url, *args[2:])
    time.sleep(0.6)  # every worker follows within a second


def stored_totals(server: Server, accounts: set[str]) -> dict[tuple[str, str, str], Decimal]:
    totals: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for r in server.records(SAAS):
        if r["CustomerAWSAccountId"] in accounts:
            totals[(r["CustomerAWSAccountId"], r["Dimension"], r["Timestamp"][:13])] += Decimal(
                r["QuantityAsDecimal"]
            )
    return dict(totals)


def last_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def test_the_server_holds_exactly_what_was_recorded_through_faults(
    aws: Server, tmp_path: Path
) -> None:
    accounts = [aws.fresh.customer()[0] for _ in range(30)]
    hour = last_hour()
    rng = random.Random(11)
    expected: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    outcomes: list[Outcome] = []
    agent = UsageMeter(
        SAAS,
        tmp_path / "outbox.db",
        client=client(aws),
        on_outcome=outcomes.append,
        background=False,
    )
    for _ in range(3000):
        account = rng.choice(accounts)
        dimension = rng.choice(["users", "storage_gb"])
        quantity: int | Decimal = (
            rng.randint(1, 5) if rng.random() < 0.7 else Decimal(rng.randint(1, 999)) / 100
        )
        tags = {"team": rng.choice(["a", "b"])} if rng.random() < 0.3 else None
        at = hour + timedelta(seconds=rng.randint(0, 3599))
        agent.record(
            customer_account=account, dimension=dimension, quantity=quantity, tags=tags, at=at
        )
        expected[(account, dimension, hour.strftime("%Y-%m-%dT%H"))] += Decimal(quantity)
    # Rates at which a group fails about one try in three: every group meets faults often,
    # and the one that fails six times running (its jittered waits grow to a minute and
    # more) stays rare; the flush waits long enough for it (under the full suite's load, one
    # group was once still pending at 120 s with rates of 0.3).
    controls(
        aws,
        "faults",
        "set",
        "--throttle-rate",
        "0.2",
        "--internal-errors",
        "3",
        "--unprocessed-rate",
        "0.2",
        "--operation",
        "BatchMeterUsage",
    )
    try:
        left = agent.flush(timeout=300)
    finally:
        controls(aws, "faults", "clear")
    agent.close()
    assert left == 0
    assert max_attempts(tmp_path / "outbox.db") > 1  # the faults were met, and overcome
    assert {o.state for o in outcomes} == {"sent"}
    assert len(outcomes) == len(expected)
    assert stored_totals(aws, set(accounts)) == dict(expected)


RECORDER = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, timezone
    from marketmeter.agent import UsageMeter
    from marketmeter.client import MarketplaceMetering

    outbox, account, hour = sys.argv[1], sys.argv[2], int(sys.argv[3])
    at = datetime.fromtimestamp(hour, timezone.utc)
    client = MarketplaceMetering(endpoint_url="http://127.0.0.1:9")
    agent = UsageMeter("{product}", outbox, client=client, send_every=3600.0)
    done = 0
    while True:
        for _ in range(200):
            agent.record(customer_account=account, dimension="users", quantity=1, at=at)
        done += 200
        print(time.time(), done, flush=True)
        time.sleep(0.01)
    """
)


def max_attempts(path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT MAX(attempts) FROM usage").fetchone()[0])
    finally:
        conn.close()


def outbox_total(path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COALESCE(SUM(micros), 0) FROM usage").fetchone()[0])
    finally:
        conn.close()


def test_a_killed_recorder_loses_at_most_its_last_second_and_counts_nothing_twice(
    aws: Server, tmp_path: Path
) -> None:
    account = aws.fresh.customer()[0]
    hour = last_hour()
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER.replace("{product}", SAAS))
    outbox = tmp_path / "shared.db"
    rng = random.Random(5)
    recorded_total = 0
    for _ in range(4):
        child = subprocess.Popen(
            [sys.executable, str(script), str(outbox), account, str(int(hour.timestamp()))],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert child.stdout is not None
        progress: list[tuple[float, int]] = []
        kill_after = time.time() + rng.uniform(1.5, 3.5)
        while time.time() < kill_after:
            line = child.stdout.readline()
            stamp, done = line.split()
            progress.append((float(stamp), int(done)))
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        killed = time.time()
        kept = outbox_total(outbox) // 1_000_000 - recorded_total
        recorded = progress[-1][1]
        older = max((d for t, d in progress if t <= killed - 1.5), default=0)
        assert older <= kept <= recorded + 200, (older, kept, recorded)
        recorded_total += kept
    agent = UsageMeter(SAAS, outbox, client=client(aws), background=False)
    assert agent.flush(timeout=60) == 0
    agent.close()
    assert stored_totals(aws, {account}) == {
        (account, "users", hour.strftime("%Y-%m-%dT%H")): Decimal(recorded_total)
    }


class MovableClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def test_an_outage_longer_than_the_window_ends_expired_a_shorter_one_delivered(
    aws: Server, tmp_path: Path
) -> None:
    short, long = aws.fresh.customer()[0], aws.fresh.customer()[0]
    hour = last_hour()
    clock = MovableClock()
    outcomes: list[Outcome] = []
    dead = f"http://127.0.0.1:{free_port()}"
    for account, outbox in ((short, "short.db"), (long, "long.db")):
        down = UsageMeter(
            SAAS,
            tmp_path / outbox,
            client=client(aws, dead),
            clock=clock,
            on_outcome=outcomes.append,
            background=False,
        )
        down.record(customer_account=account, dimension="users", quantity=5, at=hour)
        assert down.flush(timeout=2) == 1  # tried, failed, to be tried again
        down.close()
    assert outcomes == []
    try:
        clock.offset = timedelta(hours=2)  # the outage lasted two hours: within 24
        controls(aws, "clock", "advance", "2h")
        up = UsageMeter(
            SAAS,
            tmp_path / "short.db",
            client=client(aws),
            clock=clock,
            on_outcome=outcomes.append,
            background=False,
        )
        assert up.flush(timeout=30) == 0
        up.close()
        clock.offset = timedelta(hours=25)  # the other one: longer than the window
        controls(aws, "clock", "advance", "23h")
        late = UsageMeter(
            SAAS,
            tmp_path / "long.db",
            client=client(aws),
            clock=clock,
            on_outcome=outcomes.append,
            background=False,
        )
        assert late.flush(timeout=30) == 0
        late.close()
    finally:
        controls(aws, "clock", "reset")
    ends: dict[str, Any] = {o.customer: o for o in outcomes}
    assert ends[short].state == "sent"
    assert ends[long].state == "expired"
    assert stored_totals(aws, {short, long}) == {
        (short, "users", hour.strftime("%Y-%m-%dT%H")): Decimal(5)
    }
