"""Start-up: from launching `marketmeter serve` (one worker, SQLite holding the benchmark
catalog) to its first answered metering request — a signed MeterUsage dry run, the AWS
endpoint's whole path — against the same from launching the ceiling app (`bench/ceiling.py`,
served by uvicorn as marketmeter is) to its first answer: the interpreter, uvicorn and the
socket cost both alike, the rest is marketmeter's. Median of a few starts each.

    .venv/bin/python bench/startup.py        (or part of `make bench`)
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
from bench import catalog as bench_catalog
from bench.report import Ratio
from bench.run import BIN, HTTP_PROTOCOL, ROOT, Databases, free_port, uvicorn_options
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

STARTS = 5
TARGET_S = 0.4


def first_answer(command: list[str], env: dict[str, str], ask: Callable[[], bool]) -> float:
    """Seconds from launching `command` until `ask()` is answered (True)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
        start_new_session=True,
    )
    try:
        while not ask():
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited at start")
            if time.perf_counter() - started > 30:
                raise RuntimeError(f"{command} answered nothing in 30 s")
            time.sleep(0.002)
        return time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=10)


def meter_usage_dry_run(port: int) -> Callable[[], bool]:
    client = boto3.client(
        "meteringmarketplace",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id=bench_catalog.buyer_key(0)[0],
        aws_secret_access_key=bench_catalog.buyer_key(0)[1],
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=0.2, read_timeout=5),
    )

    def ask() -> bool:
        try:
            client.meter_usage(
                ProductCode=bench_catalog.AMI,
                Timestamp=time.time(),
                UsageDimension=bench_catalog.AMI_DIMENSIONS[0],
                UsageQuantity=1,
                DryRun=True,
            )
        except EndpointConnectionError:
            return False
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "DryRunOperation":
                raise
        return True

    return ask


def any_answer(port: int) -> Callable[[], bool]:
    import httpx

    def ask() -> bool:
        try:
            httpx.post(f"http://127.0.0.1:{port}/", content=b"{}", timeout=5)
        except httpx.TransportError:
            return False
        return True

    return ask


def compiled() -> None:
    """Bytecode for marketmeter's modules (and the ceiling's), as an installed wheel has it
    (pip compiles at install): a checkout run with PYTHONDONTWRITEBYTECODE=1, as this
    machine's environment sets, compiles every module again at each start (~0.15 s)."""
    import compileall

    for directory in (ROOT / "src", ROOT / "bench"):
        compileall.compile_dir(directory, quiet=1)


def startup_timings(dbs: Databases, starts: int = STARTS) -> list[Ratio]:
    compiled()
    mine, ceiling = [], []
    for _ in range(starts):  # alternately, so that the machine's drift falls on both
        port = free_port()
        command = [str(BIN / "marketmeter"), "serve", "--port", str(port)]
        command += ["--log-level", "warning", "--database", dbs.fresh("sqlite")]
        mine.append(first_answer(command, {}, meter_usage_dry_run(port)))
        port = free_port()
        command = [str(BIN / "uvicorn"), "bench.ceiling:app"]
        command += uvicorn_options(port, 1, HTTP_PROTOCOL)
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        ceiling.append(first_answer(command, {"PYTHONPATH": path}, any_answer(port)))
    took, base = statistics.median(mine), statistics.median(ceiling)
    print(
        f"· start to first answered request: marketmeter {took:.3f} s "
        f"({', '.join(f'{t:.3f}' for t in mine)}); ceiling {base:.3f} s",
        flush=True,
    )
    return [
        Ratio(
            "marketmeter serve: start to first answered MeterUsage (s, SQLite, 1 worker)",
            took,
            f"≤ {TARGET_S}",
            took <= TARGET_S,
        ),
        Ratio("start to first answer: marketmeter ÷ ceiling app", took / base, "", None),
    ]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="marketmeter-startup-"))
    dbs = Databases(work)
    try:
        for ratio in startup_timings(dbs, starts=int(sys.argv[1]) if len(sys.argv) > 1 else 5):
            print(ratio.row())
    finally:
        dbs.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
