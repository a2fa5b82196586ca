"""Hostile clients against a server, in a process of their own (so that the test's own
requests do not share a GIL with them):

    python -m tests.compat.slow_clients PORT REPORT.json [--idle N] [--slowloris N]
        [--slow-body N] [--endless N] [--seconds S]

- idle: connect, send nothing;
- slowloris: a request's headers, one byte every 0.3 s, never ending;
- slow body: whole headers announcing 100,000 bytes of body, then 10 bytes every 0.3 s;
- endless: a chunked body, 64 KiB chunks as fast as the server reads them, never ending.

Each runs until the server closes its connection or `--seconds` pass, and the report
says, per kind, how many the server closed, after how long at most, and what the endless
ones were answered (their status lines).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from marketmeter.server.runner import allow_open_files

HEAD = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AWSMPMeteringService.MeterUsage\r\n"


async def _closed_by_server(reader: asyncio.StreamReader, until: float) -> bytes | None:
    """What the server sent before closing (or resetting) the connection, or None if it
    kept it open."""
    got = bytearray()
    while True:
        try:
            chunk = await asyncio.wait_for(
                reader.read(65536), timeout=max(0.0, until - time.monotonic())
            )
        except TimeoutError:
            return None
        except ConnectionError:
            return bytes(got)
        if not chunk:
            return bytes(got)
        got += chunk


async def idle(port: int, until: float) -> dict[str, Any]:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = await _closed_by_server(reader, until)
    writer.close()
    return {"closed": answer is not None, "after": time.monotonic() - started}


async def _trickle(port: int, until: float, first: bytes, then: bytes, step: int) -> dict[str, Any]:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(first)
    closed = asyncio.create_task(_closed_by_server(reader, until))
    at = 0
    while not closed.done() and time.monotonic() < until:
        try:
            writer.write(then[at : at + step] or b"x")
            await writer.drain()
        except ConnectionError:
            break
        at += step
        await asyncio.wait([closed], timeout=0.3)
    answer = await closed
    writer.close()
    return {"closed": answer is not None, "after": time.monotonic() - started}


async def slowloris(port: int, until: float) -> dict[str, Any]:
    return await _trickle(port, until, HEAD, b"X-Slow: " + b"a" * 10_000, 1)


async def slow_body(port: int, until: float) -> dict[str, Any]:
    head = HEAD + b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 100000\r\n\r\n"
    return await _trickle(port, until, head, b"{" + b" " * 100_000, 10)


async def endless(port: int, until: float) -> dict[str, Any]:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
    closed = asyncio.create_task(_closed_by_server(reader, until))
    sent = 0
    while not closed.done() and time.monotonic() < until:
        try:
            writer.write(chunk)
            await writer.drain()
        except ConnectionError:
            break
        sent += 0x10000
        await asyncio.sleep(0)
    answer = await closed
    writer.close()
    status = (answer or b"").split(b"\r\n", 1)[0].decode(errors="replace")
    return {
        "closed": answer is not None,
        "after": time.monotonic() - started,
        "status": status,
        "sent": sent,
    }


KINDS = {"idle": idle, "slowloris": slowloris, "slow_body": slow_body, "endless": endless}
MIX = {"idle": 2000, "slowloris": 150, "slow_body": 50, "endless": 2}
"""The clients the test and `bench/slow_clients.py` send, by kind."""


def launch(
    port: int, report: Path, seconds: float, counts: dict[str, int] | None = None
) -> subprocess.Popen[bytes]:
    """This module as a process of its own, sending `counts` clients (default `MIX`)."""
    options = [f"--{k.replace('_', '-')}={n}" for k, n in (counts or MIX).items()]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.compat.slow_clients",
            str(port),
            str(report),
            *options,
            f"--seconds={seconds}",
        ],
        cwd=Path(__file__).resolve().parents[2],
    )


async def main(port: int, counts: dict[str, int], seconds: float) -> dict[str, Any]:
    until = time.monotonic() + seconds
    tasks = {
        kind: [asyncio.create_task(KINDS[kind](port, until)) for _ in range(n)]
        for kind, n in counts.items()
    }
    report: dict[str, Any] = {}
    for kind, started in tasks.items():
        results = list(await asyncio.gather(*started, return_exceptions=True))
        ok = [r for r in results if isinstance(r, dict)]
        report[kind] = {
            "clients": len(results),
            "failed_to_run": [repr(r) for r in results if not isinstance(r, dict)][:3],
            "closed_by_server": sum(r["closed"] for r in ok),
            "longest_open": max((r["after"] for r in ok if r["closed"]), default=None),
            "statuses": sorted({r["status"] for r in ok if "status" in r}),
        }
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("report", type=Path)
    for kind in KINDS:
        parser.add_argument(f"--{kind.replace('_', '-')}", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    counts = {kind: getattr(args, kind) for kind in KINDS if getattr(args, kind)}
    allow_open_files(sum(counts.values()) + 64)  # (each client holds one)
    found = asyncio.run(main(args.port, counts, args.seconds))
    args.report.write_text(json.dumps(found, indent=2))
    sys.exit(0)
