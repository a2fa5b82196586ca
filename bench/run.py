"""`make bench`: marketmeter against moto's server and against the ceiling of its HTTP
stack, on the same machine, in the same run, with the same pre-signed requests.

Every scenario gets a fresh copy of a database holding the benchmark catalog, a server
process, and wrk sending unique pre-signed requests at a fixed concurrency for a fixed
time. Throughput counts what the database holds afterwards, not what was answered.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import catalog as bench_catalog  # noqa: E402
from bench.presign import Credentials, Signer, write_requests  # noqa: E402
from bench.report import Ratio, RssSample, ratios, write_chart, write_markdown  # noqa: E402

from marketmeter.server.runner import APP_FACTORY, HTTP_PROTOCOL  # noqa: E402
from marketmeter.store.sqlite import SqliteStore  # noqa: E402
from marketmeter.store.sqlite_rollups import rollups_path  # noqa: E402

BIN = Path(sys.executable).parent
LUA = ROOT / "bench" / "replay.lua"
WARM_UP_SECONDS = 3


# -- request sets ----------------------------------------------------------------------------


def batch_requests(signer: Signer, count: int, hours: range = range(1, 23)) -> Iterator[bytes]:
    """`count` BatchMeterUsage requests of 25 records, every record a distinct slot."""
    top = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    seller = Credentials(*bench_catalog.SELLER_KEY)

    def records() -> Iterator[dict[str, object]]:
        for h in hours:
            ts = int((top - timedelta(hours=h) + timedelta(minutes=5)).timestamp())
            for c in range(bench_catalog.CUSTOMERS):
                # By CustomerIdentifier: moto's server knows no other way to name a customer.
                customer = bench_catalog.customer_identifier(c)
                for dimension in bench_catalog.SAAS_DIMENSIONS:
                    yield {
                        "Timestamp": ts,
                        "CustomerIdentifier": customer,
                        "Dimension": dimension,
                        "Quantity": c % 97 + 1,
                    }

    sent = 0
    batch: list[dict[str, object]] = []
    for record in records():
        batch.append(record)
        if len(batch) == 25:
            yield signer.request(
                seller,
                "BatchMeterUsage",
                {"ProductCode": bench_catalog.SAAS, "UsageRecords": batch},
            )
            batch = []
            sent += 1
            if sent == count:
                return


def scattered_requests(
    signer: Signer, count: int, hours: range = range(1, 23), seed: int = 7
) -> Iterator[bytes]:
    """`count` BatchMeterUsage requests of 25 different customers each, spread over all
    of them in a random order, every record with a timestamp of its own in its hour and a
    slot of its own: what a service shared by many sellers, or a seller sending usage as it
    comes, sends. By CustomerAWSAccountId, the 2026 API's way to name a customer."""
    rng = random.Random(seed)
    top = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    seller = Credentials(*bench_catalog.SELLER_KEY)
    n = bench_catalog.CUSTOMERS
    sent = 0
    for h in hours:
        start = (top - timedelta(hours=h)).timestamp()
        for dimension in bench_catalog.SAAS_DIMENSIONS:  # each customer once per round
            order = rng.sample(range(n), n)
            for first in range(0, n - 24, 25):
                records = [
                    {
                        "Timestamp": round(start + rng.uniform(0, 3599), 3),
                        "CustomerAWSAccountId": bench_catalog.customer_account(c),
                        "Dimension": dimension,
                        "Quantity": c % 97 + 1,
                    }
                    for c in order[first : first + 25]
                ]
                yield signer.request(
                    seller,
                    "BatchMeterUsage",
                    {"ProductCode": bench_catalog.SAAS, "UsageRecords": records},
                )
                sent += 1
                if sent == count:
                    return


def meter_requests(signer: Signer, count: int, hours: range = range(1, 5)) -> Iterator[bytes]:
    """`count` MeterUsage requests, each a distinct (instance, dimension, hour), each with its
    own ClientToken as boto3 sends one."""
    top = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    keys = [Credentials(*bench_catalog.buyer_key(i)) for i in range(bench_catalog.BUYER_KEYS)]
    sent = 0
    for h in hours:
        ts = int((top - timedelta(hours=h) + timedelta(minutes=7)).timestamp())
        for key in keys:
            for dimension in bench_catalog.AMI_DIMENSIONS:
                payload = {
                    "ProductCode": bench_catalog.AMI,
                    "Timestamp": ts,
                    "UsageDimension": dimension,
                    "UsageQuantity": h,
                    "ClientToken": str(uuid.uuid4()),
                }
                yield signer.request(key, "MeterUsage", payload)
                sent += 1
                if sent == count:
                    return


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Process:
    command: list[str]
    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self, health: str = "/health") -> None:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **self.env},
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.command[0]} exited:\n{self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                if health:
                    urllib.request.urlopen(
                        f"http://127.0.0.1:{self.port}{health}", timeout=2
                    ).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.command} did not start")

    def pids(self) -> list[int]:
        """The process and its children (server workers)."""
        assert self.popen is not None
        found = [self.popen.pid]
        try:
            out = subprocess.run(
                ["pgrep", "-g", str(os.getpgid(self.popen.pid))],
                capture_output=True,
                text=True,
                check=False,
            )
            found = sorted({int(p) for p in out.stdout.split()} | {self.popen.pid})
        except ProcessLookupError:
            pass
        return found

    def rss_mb(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the process and its workers have used so far."""
        ticks = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


# -- databases -------------------------------------------------------------------------------


def prefill_sqlite(path: Path, records: int) -> None:
    """`records` records of the benchmark's product, its customers and dimensions, in hours
    before any the runs use (from 100 hours back), with ids as marketmeter makes them — the
    table and its indexes as large as after weeks of traffic. `Databases.prefilled` then
    sums them into the usage rollups' file once, as opening the store does."""
    top = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first_hour = int((top - timedelta(hours=100)).timestamp() * 1000)
    per_hour = bench_catalog.CUSTOMERS * len(bench_catalog.SAAS_DIMENSIONS)
    dimensions = len(bench_catalog.SAAS_DIMENSIONS)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -1048576")
        conn.execute("BEGIN")
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1) "
            "INSERT INTO metering_records (record_id, product_code, customer_aws_account_id, "
            "resource, license_key, dimension, hour, operation, timestamp, quantity_micros, "
            "quantity_text, quantity_as_decimal, allocations, customer_identifier, license_arn, "
            "received_at, accepted_late) "
            # ids as marketmeter makes them: UUIDs of version 7, the time they were made
            # (here: 400 ms into the record's hour) first, then random bits.
            "SELECT printf('%08x-%04x-7%03x-a%03x-%012x', (ms >> 16), ms & 65535, "
            "random() & 4095, random() & 4095, random() & 281474976710655), ?, "
            "printf('6%011d', i / ? % ?), '', '', "
            "'saas_dim_' || (i % ?), ? - (i / ?) * 3600000, 'BatchMeterUsage', "
            "? - (i / ?) * 3600000 + 300000, 1000000, '1', 0, NULL, "
            "printf('benchcust%06d', i / ? % ?), '', ms, 0 "
            "FROM (SELECT i, ? - (i / ?) * 3600000 + 400000 AS ms FROM n)",
            (
                records,
                bench_catalog.SAAS,
                dimensions,
                bench_catalog.CUSTOMERS,
                dimensions,
                first_hour,
                per_hour,
                first_hour,
                per_hour,
                dimensions,
                bench_catalog.CUSTOMERS,
                first_hour,
                per_hour,
            ),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


_LOG_ENTRY = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[\d+\] ")
"""The start of an entry of PostgreSQL's log (its default log_line_prefix, '%m [%p] ')."""


class Databases:
    """A template database holding the catalog, copied for every scenario."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.catalog_file = work / "catalog.yaml"
        self.catalog_file.write_text(yaml.safe_dump(bench_catalog.catalog(), sort_keys=False))
        self.sqlite_template = work / "template.db"
        print("· applying the benchmark catalog (SQLite)", flush=True)
        marketmeter(
            "catalog",
            "apply",
            "--database",
            f"sqlite:///{self.sqlite_template}",
            str(self.catalog_file),
        )
        self.pg: Any = None
        self._n = 0

    @staticmethod
    def postgres_installed() -> bool:
        from tests.postgres import find_bindir

        return find_bindir() is not None

    def _start_postgres(self) -> None:
        """Only when a PostgreSQL scenario comes: an idle cluster still takes CPU."""
        from tests.postgres import TemporaryPostgres, find_bindir

        bindir = find_bindir()
        assert bindir is not None
        # PostgreSQL's defaults, as production runs it: fsync on, synchronous_commit on.
        # auto_explain logs the plan of every statement slower than 1 s (none should be),
        # for `slow_plans` to show.
        self.pg = TemporaryPostgres(
            bindir, durable=True, settings={"auto_explain.log_min_duration": "1000"}
        )
        self.pg.start()
        print("· applying the benchmark catalog (PostgreSQL)", flush=True)
        self._pg_admin("CREATE DATABASE bench_template")
        marketmeter(
            "catalog", "apply", "--database", self.pg.url("bench_template"), str(self.catalog_file)
        )
        import psycopg

        with psycopg.connect(self.pg.url("bench_template"), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")

    def _pg_admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.pg.url(), autocommit=True) as conn:
            conn.execute(sql)

    def fresh(self, store: str) -> str:
        self._n += 1
        if store == "sqlite":
            path = self.work / f"run{self._n}.db"
            shutil.copy(self.sqlite_template, path)
            return f"sqlite:///{path}"
        if self.pg is None:
            self._start_postgres()
        name = f"bench_run{self._n}"
        self._pg_admin(f"CREATE DATABASE {name} TEMPLATE bench_template")
        return str(self.pg.url(name))

    def prefilled(self, records: int) -> str:
        """A SQLite copy of the template already holding `records` records (made once)."""
        template = self.work / f"template-{records}.db"
        if not template.exists():
            started = time.monotonic()
            print(f"· storing {records:,} records in a copy of the template (once)", flush=True)
            shutil.copy(self.sqlite_template, template)
            prefill_sqlite(template, records)
            SqliteStore(template).close()  # the records summed into the rollups' file
            print(f"  in {time.monotonic() - started:.0f} s", flush=True)
        self._n += 1
        path = self.work / f"run{self._n}.db"
        shutil.copy(template, path)
        # with its rollups (of the same generation: not summed again when a server opens it)
        shutil.copy(rollups_path(str(template)), rollups_path(str(path)))
        return f"sqlite:///{path}"

    def empty(self, store: str) -> str:
        """A new database with nothing in it (its schema is made on first use)."""
        self._n += 1
        if store == "sqlite":
            return f"sqlite:///{self.work / f'empty{self._n}.db'}"
        if self.pg is None:
            self._start_postgres()
        self._pg_admin(f"CREATE DATABASE bench_empty{self._n}")
        return str(self.pg.url(f"bench_empty{self._n}"))

    def slow_plans(self, most: int = 80) -> list[str]:
        """The plans PostgreSQL's auto_explain logged (statements slower than 1 s), up to
        `most` lines, or none."""
        if self.pg is None:
            return []
        log = (self.pg.root / "server.log").read_text(errors="replace").splitlines()
        plans: list[str] = []
        taking = False
        for line in log:
            if "LOG:  duration:" in line and "plan:" in line:
                taking = True
            elif _LOG_ENTRY.match(line):  # the next entry of the log
                taking = False
            if taking:
                plans.append(line)
        return plans[:most]

    def count(self, url: str) -> int:
        if url.startswith("sqlite"):
            conn = sqlite3.connect(url.removeprefix("sqlite:///"))
            try:
                return int(conn.execute("SELECT COUNT(*) FROM metering_records").fetchone()[0])
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(url) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM metering_records").fetchone()[0])

    def execute(self, url: str, sql: str) -> None:
        if url.startswith("sqlite"):
            conn = sqlite3.connect(url.removeprefix("sqlite:///"))
            try:
                conn.execute(sql)
                conn.commit()
            finally:
                conn.close()
            return
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql)

    def max_seq(self, url: str) -> int:
        """Records stored so far, cheaply (the highest sequence number)."""
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return int(
                conn.execute("SELECT COALESCE(MAX(seq), 0) FROM metering_records").fetchone()[0]
            )
        finally:
            conn.close()

    def close(self) -> None:
        if self.pg is not None:
            self.pg.stop()
            self.pg = None


def marketmeter(*args: str) -> None:
    subprocess.run([str(BIN / "marketmeter"), *args], check=True, capture_output=True)


# -- scenarios -------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    target: str  # marketmeter | moto | ceiling
    operation: str  # batch | meter
    store: str | None = None  # sqlite | postgresql (marketmeter only)
    workers: int = 1
    two_writes: bool = False  # uvicorn's own protocol: a response's head and body apart
    rollups: bool = (
        True  # False: the write path without the usage rollups (bench/without_rollups.py)
    )
    console: bool = True  # False: the application without the console (bench/without_console.py)
    prefill: int = 0  # records already in the table when the run starts (SQLite)
    variant: str | None = None  # a module of bench/ that changes marketmeter as it imports


@dataclass
class Result:
    scenario: Scenario
    requests_per_s: float
    records_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    replays: int
    stored: int | None
    cpu_us_per_request: float = 0.0
    """The server processes' CPU time (user and system) per request answered."""
    cpu_us_per_record: float = 0.0
    """The same per record stored (per request answered where nothing is stored)."""

    def row(self) -> str:
        stored = "—" if self.stored is None else f"{self.stored:,}"
        return (
            f"| {self.scenario.name} | {self.requests_per_s:,.0f} | {self.records_per_s:,.0f} | "
            f"{self.p50_ms:.2f} | {self.p99_ms:.2f} | {self.errors} | {stored} |"
        )


def server_for(scenario: Scenario, port: int, work: Path, database: str | None) -> Process:
    log = work / f"{scenario.name.replace(' ', '_')}.log"
    http = "httptools" if scenario.two_writes else HTTP_PROTOCOL
    if scenario.target == "marketmeter" and scenario.two_writes:
        # The same application and settings as `marketmeter serve`, on uvicorn's protocol.
        command = [
            str(BIN / "uvicorn"),
            APP_FACTORY,
            "--factory",
            *uvicorn_options(port, scenario.workers, http),
        ]
        env = {"MARKETMETER_DATABASE_URL": str(database), "MARKETMETER_LOG_LEVEL": "warning"}
        return Process(command, port, log, env=env)
    if scenario.target == "marketmeter":
        program = [str(BIN / "marketmeter")]
        env = {}
        variant = None if scenario.rollups else "bench.without_rollups"
        if not scenario.console:
            variant = "bench.without_console"
        variant = scenario.variant or variant
        if variant is not None:
            program = [str(BIN / "python"), "-m", variant]
            env = {
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
                )
            }
        command = [
            *program,
            "serve",
            "--port",
            str(port),
            "--workers",
            str(scenario.workers),
            "--log-level",
            "warning",
            "--database",
            str(database),
        ]
        return Process(command, port, log, env=env)
    if scenario.target == "ceiling":
        command = [
            str(BIN / "uvicorn"),
            "bench.ceiling:app",
            *uvicorn_options(port, scenario.workers, http),
        ]
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        return Process(command, port, log, env={"PYTHONPATH": path})
    command = [str(BIN / "moto_server"), "-p", str(port)]
    return Process(command, port, log)


def catalog_apply_timings(dbs: Databases, stores: list[str], customers: int) -> list[Ratio]:
    """`marketmeter catalog apply` of a YAML catalog of `customers` subscriptions, into an
    empty database and then again (nothing changes), timed as a user runs it."""
    path = dbs.work / "catalog-apply.yaml"
    path.write_text(yaml.safe_dump(bench_catalog.catalog(customers, 100), sort_keys=False))
    found = []
    for store in stores:
        url = dbs.empty(store)
        for label in ("into an empty database", "again, unchanged"):
            started = time.monotonic()
            marketmeter("catalog", "apply", "--database", url, str(path))
            took = time.monotonic() - started
            name = "SQLite" if store == "sqlite" else "PostgreSQL"
            print(f"· catalog apply of {customers:,} subscriptions, {name}, {label}: {took:.1f} s")
            found.append(
                Ratio(
                    f"catalog apply, {customers:,} subscriptions (YAML), {name}, {label} (s)",
                    took,
                    "≤ 5",
                    took <= 5,
                )
            )
    return found


def agent_record_rate(work: Path, calls: int = 1_000_000) -> list[Ratio]:
    """`UsageMeter.record()` from one thread, against the least any recorder must do: a
    sum in a dictionary under a lock (the baseline, measured in the same run)."""
    import threading

    from marketmeter.agent import UsageMeter

    meter = UsageMeter(
        bench_catalog.SAAS,
        work / "agent-outbox.db",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="AKIANOTUSED000000001",
        aws_secret_access_key="not-used-" + "0" * 31,
        background=False,
    )
    customers = [bench_catalog.customer_identifier(i) for i in range(1000)]
    started = time.perf_counter()
    for i in range(calls):
        meter.record(customers[i % 1000], "saas_dim_0", 1)
    agent = calls / (time.perf_counter() - started)
    meter.close()
    sums: dict[tuple[str, str], int] = {}
    lock = threading.Lock()
    started = time.perf_counter()
    for i in range(calls):
        key = (customers[i % 1000], "saas_dim_0")
        with lock:
            sums[key] = sums.get(key, 0) + 1
    bare = calls / (time.perf_counter() - started)
    print(f"· agent record(): {agent:,.0f} calls/s; a bare locked dictionary sum: {bare:,.0f}")
    return [
        Ratio("agent record() calls/s, one thread", agent, "≥ 200,000", agent >= 200_000),
        Ratio("agent record() ÷ a bare locked dictionary sum (calls/s)", agent / bare, "", None),
    ]


def uvicorn_options(port: int, workers: int, http: str) -> list[str]:
    """uvicorn's command-line options for a server run as `marketmeter serve` runs it."""
    return [
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        "--no-server-header",
        "--loop",
        "uvloop",
        "--http",
        http,
        "--ws",
        "none",
    ]


def run_wrk(port: int, requests_file: Path, seconds: int, connections: int) -> dict[str, Any]:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}/",
        "--",
        str(requests_file),
        "1",
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return dict(json.loads(line.removeprefix("RESULT ")))


def measure(
    scenario: Scenario,
    dbs: Databases,
    files: dict[str, Path],
    *,
    seconds: int,
    connections: int,
    work: Path,
) -> Result:
    database = None
    if scenario.prefill:
        database = dbs.prefilled(scenario.prefill)
    elif scenario.target == "marketmeter" and scenario.store:
        database = dbs.fresh(scenario.store)
    if database and database.startswith("postgresql"):
        # Every PostgreSQL scenario starts with nothing left to write of the one before
        # (with fsync on, a checkpoint of its pages would otherwise fall into this run).
        dbs.execute(database, "CHECKPOINT")
    if database and not scenario.rollups and database.startswith("postgresql"):
        # the database's own part of the usage log: the index folds find records by
        dbs.execute(database, "DROP INDEX metering_records_logged_by")
    port = free_port()
    server = server_for(scenario, port, work, database)
    health = "" if scenario.target == "moto" else "/health"
    server.start(health=health)
    try:
        # Warm up (caches, connections) on requests of an hour the measured run never uses.
        run_wrk(port, files[f"{scenario.operation}-warm"], WARM_UP_SECONDS, connections)
        before = dbs.count(database) if database else 0
        cpu_before = server.cpu_seconds()
        stats = run_wrk(port, files[scenario.operation], seconds, connections)
        cpu = server.cpu_seconds() - cpu_before
    finally:
        server.stop()
    duration = stats["duration_us"] / 1e6
    per_request = 1 if scenario.operation == "meter" else 25
    # Socket errors are not counted: moto's server closes the connection after each reply.
    errors = stats["status_errors"] + stats["timeouts"]
    stored = dbs.count(database) - before if database else None
    ok_requests = stats["requests"] - errors
    records = stored if stored is not None else ok_requests * per_request
    return Result(
        scenario,
        requests_per_s=stats["requests"] / duration,
        records_per_s=records / duration,
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        errors=errors,
        replays=stats["replays"],
        stored=stored,
        cpu_us_per_request=cpu / max(stats["requests"], 1) * 1e6,
        cpu_us_per_record=cpu / max(records, 1) * 1e6,
    )


def sustained(
    dbs: Databases, signer_files: RequestFiles, minutes: float, connections: int, work: Path
) -> list[RssSample]:
    """BatchMeterUsage on SQLite for `minutes`, sampling the server's memory every 5 s."""
    path = work / "batch-all.requests"
    write_requests(
        path, batch_requests(Signer(host="127.0.0.1"), 10**9, range(1, 23))
    )  # every distinct slot of the window: about 211,000 requests
    database = dbs.fresh("sqlite")
    port = free_port()
    server = server_for(
        Scenario("sustained", "marketmeter", "batch", "sqlite"), port, work, database
    )
    server.start()
    seconds = max(int(minutes * 60), 5)
    samples: list[RssSample] = []
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
        "-s", str(LUA), f"http://127.0.0.1:{port}/", "--", str(path), "1",
    ]  # fmt: skip
    try:
        load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started = time.monotonic()
        while load.poll() is None:
            samples.append(
                RssSample(time.monotonic() - started, server.rss_mb(), dbs.max_seq(database))
            )
            print(
                f"  {samples[-1].seconds:5.0f} s: RSS {samples[-1].rss_mb:.1f} MB, "
                f"{samples[-1].records:,} records",
                flush=True,
            )
            time.sleep(5)
        samples.append(
            RssSample(time.monotonic() - started, server.rss_mb(), dbs.max_seq(database))
        )
    finally:
        server.stop()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="length of each run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--rss-minutes", type=float, default=5.0, help="sustained run for RSS (0: skip)"
    )
    parser.add_argument(
        "--only",
        default="",
        help="run the scenarios whose name contains one of these ('; '); 'catalog' times "
        "catalog apply, 'agent' the agent's record(), 'kit' the testing kit, 'report' usage "
        "reports over 10 M records",
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--report-records",
        type=int,
        default=10_000_000,
        help="records of the database the usage reports are timed on",
    )
    parser.add_argument(
        "--catalog-customers",
        type=int,
        default=100_000,
        help="subscriptions of the timed catalog apply (0: skip)",
    )
    parser.add_argument(
        "--prefill",
        type=int,
        default=5_000_000,
        help="records already stored for the pre-filled scenarios (0: skip them)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument(
        "--batch-requests", type=int, default=80_000, help="distinct batches signed"
    )
    parser.add_argument(
        "--meter-requests", type=int, default=300_000, help="distinct MeterUsage requests signed"
    )
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (make bench does it)")
    scenarios = [
        Scenario("BatchMeterUsage, marketmeter, SQLite", "marketmeter", "batch", "sqlite"),
        Scenario(
            "BatchMeterUsage scattered, marketmeter, SQLite", "marketmeter", "scattered", "sqlite"
        ),
        # The same two on a table that already holds millions of records.
        *(
            Scenario(
                f"{op}, marketmeter, SQLite, {args.prefill / 1e6:g} M records",
                "marketmeter",
                kind,
                "sqlite",
                prefill=args.prefill,
            )
            for op, kind in (
                ("BatchMeterUsage", "batch"),
                ("BatchMeterUsage scattered", "scattered"),
            )
            if args.prefill > 0
        ),
        Scenario("BatchMeterUsage, moto", "moto", "batch"),
        Scenario("BatchMeterUsage, ceiling", "ceiling", "batch"),
        Scenario("MeterUsage, marketmeter, SQLite", "marketmeter", "meter", "sqlite"),
        # The console's cost to the AWS endpoint: the same build without it.
        *(
            Scenario(
                f"{op}, marketmeter, SQLite, no console",
                "marketmeter",
                kind,
                "sqlite",
                console=False,
            )
            for op, kind in (("BatchMeterUsage", "batch"), ("MeterUsage", "meter"))
        ),
        Scenario("MeterUsage, ceiling", "ceiling", "meter"),
        Scenario(
            "BatchMeterUsage, marketmeter, SQLite, two writes",
            "marketmeter",
            "batch",
            "sqlite",
            two_writes=True,
        ),
        Scenario(
            "MeterUsage, marketmeter, SQLite, two writes",
            "marketmeter",
            "meter",
            "sqlite",
            two_writes=True,
        ),
        Scenario(
            "BatchMeterUsage, marketmeter, SQLite, 2 workers", "marketmeter", "batch", "sqlite", 2
        ),
        Scenario("MeterUsage, marketmeter, SQLite, 2 workers", "marketmeter", "meter", "sqlite", 2),
        Scenario(
            "BatchMeterUsage, marketmeter, PostgreSQL, 2 workers",
            "marketmeter",
            "batch",
            "postgresql",
            2,
        ),
        Scenario(
            "MeterUsage, marketmeter, PostgreSQL, 2 workers",
            "marketmeter",
            "meter",
            "postgresql",
            2,
        ),
        Scenario(
            "BatchMeterUsage scattered, marketmeter, SQLite, 2 workers",
            "marketmeter",
            "scattered",
            "sqlite",
            2,
        ),
        Scenario(
            "BatchMeterUsage scattered, marketmeter, PostgreSQL, 2 workers",
            "marketmeter",
            "scattered",
            "postgresql",
            2,
        ),
        # The usage rollups' cost: the same build without them (bench/without_rollups.py).
        *(
            Scenario(
                f"{op}, marketmeter, {label}, 2 workers, no rollups",
                "marketmeter",
                kind,
                store,
                2,
                rollups=False,
            )
            for op, kind in (("BatchMeterUsage", "batch"), ("MeterUsage", "meter"))
            for label, store in (("SQLite", "sqlite"), ("PostgreSQL", "postgresql"))
        ),
        Scenario("BatchMeterUsage, ceiling, 2 workers", "ceiling", "batch", workers=2),
        Scenario("MeterUsage, ceiling, 2 workers", "ceiling", "meter", workers=2),
    ]
    if args.only:
        wanted = [w.strip() for w in args.only.split(";") if w.strip()]
        scenarios = [s for s in scenarios if any(w in s.name for w in wanted)]
    if args.no_postgres:
        scenarios = [s for s in scenarios if s.store != "postgresql"]

    work = Path(tempfile.mkdtemp(prefix="marketmeter-bench-"))
    dbs = Databases(work)
    try:
        if not Databases.postgres_installed():
            print("· PostgreSQL is not installed: PostgreSQL scenarios skipped", flush=True)
            scenarios = [s for s in scenarios if s.store != "postgresql"]
        # PostgreSQL last: its cluster starts only then, and cannot disturb the others.
        scenarios.sort(key=lambda s: s.store == "postgresql")
        files = RequestFiles(work, batch_count=args.batch_requests, meter_count=args.meter_requests)
        results = []
        for scenario in scenarios:
            paths = files.ready()
            print(
                f"· {scenario.name}: {args.seconds} s at {args.connections} connections", flush=True
            )
            result = measure(
                scenario, dbs, paths, seconds=args.seconds, connections=args.connections, work=work
            )
            print(
                f"  {result.requests_per_s:,.0f} requests/s, {result.records_per_s:,.0f} "
                f"records/s, p99 {result.p99_ms:.2f} ms, errors {result.errors}",
                flush=True,
            )
            results.append(result)
        applied: list[Ratio] = []
        if not args.only or "agent" in args.only:
            applied += agent_record_rate(work)
        if not args.only or "report" in args.only:
            from bench.usage_reports import report_timings

            applied += report_timings(
                f"sqlite:///{work / 'reports.db'}", "SQLite", 1000, args.report_records
            )
            if not args.no_postgres and Databases.postgres_installed():
                applied += report_timings(
                    dbs.empty("postgresql"), "PostgreSQL", 1000, args.report_records
                )
        plans = dbs.slow_plans()
        if plans:
            print("· PostgreSQL statements slower than 1 s (auto_explain):", flush=True)
            print("\n".join(plans), flush=True)
        if not args.only or "kit" in args.only:
            from bench.testing_kit import testing_kit_timings

            applied += testing_kit_timings()
        if not args.only or "startup" in args.only:
            from bench.startup import startup_timings

            applied += startup_timings(dbs)
        if args.catalog_customers > 0 and (not args.only or "catalog" in args.only):
            stores = ["sqlite"] + (
                ["postgresql"] if not args.no_postgres and Databases.postgres_installed() else []
            )
            applied += catalog_apply_timings(dbs, stores, args.catalog_customers)
        rss: list[RssSample] = []
        dbs.close()  # PostgreSQL is done with: stop it before the sustained run
        if args.rss_minutes > 0:
            print(f"· sustained run for RSS: {args.rss_minutes:g} minutes", flush=True)
            rss = sustained(dbs, files, args.rss_minutes, args.connections, work)
        found = ratios(results, rss) + applied
        print_table(results)
        print()
        print("| measure | value | target | |")
        print("|---|---:|---|---|")
        for ratio in found:
            print(ratio.row())
        if not args.only:
            command = (
                "make bench"
                if args.rss_minutes == 5
                else "python bench/run.py " + " ".join(sys.argv[1:])
            )
            write_markdown(
                args.output, results, found, rss, command, args.seconds, args.connections
            )
            write_chart(args.output.with_suffix(".png"), results, rss)
            raw = {
                "command": command,
                "seconds": args.seconds,
                "connections": args.connections,
                "results": [dataclasses.asdict(r) for r in results],
                "rss": [dataclasses.asdict(s) for s in rss],
            }
            args.output.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n")
            print(f"\nwrote {args.output.name} and its chart in {args.output.parent}")
    finally:
        dbs.close()
        shutil.rmtree(work, ignore_errors=True)


class RequestFiles:
    """The pre-signed request files, signed again when their signatures near the 15-minute
    limit of SigV4 (each scenario runs on a fresh database, so one set serves them all)."""

    MAX_AGE = timedelta(minutes=8)

    def __init__(self, work: Path, batch_count: int, meter_count: int) -> None:
        self.work = work
        self.counts = {"batch": batch_count, "meter": meter_count}
        self.signed_at: datetime | None = None
        self.paths = {
            "batch": work / "batch.requests",
            "scattered": work / "scattered.requests",
            "meter": work / "meter.requests",
            # Warm-up sets: the same customers and instances in an hour the runs never use.
            "batch-warm": work / "batch-warm.requests",
            "scattered-warm": work / "scattered-warm.requests",
            "meter-warm": work / "meter-warm.requests",
        }

    def ready(self) -> dict[str, Path]:
        now = datetime.now(UTC)
        if self.signed_at is None or now - self.signed_at > self.MAX_AGE:
            started = time.monotonic()
            signer = Signer(host="127.0.0.1")
            n_batch = write_requests(
                self.paths["batch"], batch_requests(signer, self.counts["batch"])
            )
            n_meter = write_requests(
                self.paths["meter"], meter_requests(signer, self.counts["meter"])
            )
            write_requests(
                self.paths["scattered"], scattered_requests(signer, self.counts["batch"])
            )
            warm_batches = bench_catalog.CUSTOMERS * len(bench_catalog.SAAS_DIMENSIONS) // 25
            write_requests(
                self.paths["batch-warm"], batch_requests(signer, warm_batches, range(23, 24))
            )
            write_requests(
                self.paths["scattered-warm"],
                scattered_requests(signer, warm_batches, range(23, 24), seed=8),
            )
            warm_meters = bench_catalog.BUYER_KEYS * len(bench_catalog.AMI_DIMENSIONS)
            write_requests(
                self.paths["meter-warm"], meter_requests(signer, warm_meters, range(5, 6))
            )
            self.signed_at = now
            print(
                f"· signed {n_batch:,} BatchMeterUsage (twice: in order, scattered) and "
                f"{n_meter:,} MeterUsage requests "
                f"in {time.monotonic() - started:.1f} s",
                flush=True,
            )
        return self.paths


def print_table(results: list[Result]) -> None:
    print("| scenario | requests/s | records/s | p50 ms | p99 ms | errors | stored |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(r.row())


if __name__ == "__main__":
    main()
