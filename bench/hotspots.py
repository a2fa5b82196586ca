"""Where the time goes: the endpoint's request handling (signature, decoding, validation,
domain, store), without HTTP, on a copy of the benchmark catalog, under cProfile or
pyinstrument. `python bench/hotspots.py batch|scattered|meter [--requests N]
[--pyinstrument]`."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from bench import catalog as bench_catalog  # noqa: E402
from bench.presign import Signer  # noqa: E402
from bench.run import (  # noqa: E402
    batch_requests,
    marketmeter,
    meter_requests,
    scattered_requests,
)


def split(raw: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")[1:]
    headers = [
        (k.strip().lower(), v.strip()) for k, _, v in (line.partition(b":") for line in lines)
    ]
    return headers, body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("operation", choices=["batch", "scattered", "meter"])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--pyinstrument", action="store_true")
    parser.add_argument("--bare", action="store_true", help="time it, no profiler")
    parser.add_argument("--database", default="")
    parser.add_argument("--dump", default="", help="save cProfile's statistics to this file")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--rounds", type=int, default=1, help="time this many rounds of --requests; the best"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="marketmeter-profile-"))
    try:
        url = args.database
        if not url:
            catalog_file = work / "catalog.yaml"
            catalog_file.write_text(yaml.safe_dump(bench_catalog.catalog()))
            url = f"sqlite:///{work / 'p.db'}"
            marketmeter("catalog", "apply", "--database", url, str(catalog_file))
        from marketmeter.app import create_app, tune_garbage_collector
        from marketmeter.config import Settings

        app = create_app(Settings(database_url=url))
        tune_garbage_collector()  # as a server process does
        signer = Signer(host="127.0.0.1")
        make = {"batch": batch_requests, "scattered": scattered_requests}.get(
            args.operation, meter_requests
        )
        # The same customers and instances twice: an hour to warm the caches up (untimed),
        # then another hour, measured.
        warm = [split(r) for r in make(signer, args.requests, range(3, 4))]
        raws = [split(r) for r in make(signer, args.requests * args.rounds, range(2, 3))]

        profiler: Any = None
        if args.pyinstrument:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002)
        elif not args.bare:
            profiler = cProfile.Profile()
            profiler.start = profiler.enable  # type: ignore[method-assign]
            profiler.stop = profiler.disable  # type: ignore[method-assign]

        async def one(headers: list[tuple[bytes, bytes]], body: bytes) -> None:
            sent: list[dict[str, object]] = []

            async def send(message: dict[str, object]) -> None:
                sent.append(message)

            delivered = False

            async def receive() -> dict[str, object]:
                nonlocal delivered
                if delivered:
                    return {"type": "http.disconnect"}
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}

            scope = {
                "type": "http",
                "method": "POST",
                "path": "/",
                "raw_path": b"/",
                "query_string": b"",
                "headers": headers,
            }
            await app(scope, receive, send)
            if sent[0]["status"] != 200:
                raise SystemExit(f"status {sent[0]['status']}: {sent[1]['body']!r}")

        rounds: list[float] = []
        cpu: list[float] = []  # this process's CPU time a round (all its threads)

        async def drive() -> None:
            # The lifespan start-up, as uvicorn does it (this turns group commit on).
            events: asyncio.Queue[dict[str, str]] = asyncio.Queue()
            await events.put({"type": "lifespan.startup"})
            started = asyncio.Event()

            async def lifespan_send(message: dict[str, object]) -> None:
                started.set()

            lifespan = asyncio.create_task(app({"type": "lifespan"}, events.get, lifespan_send))
            await started.wait()
            for i in range(0, len(warm), args.concurrency):
                await asyncio.gather(*(one(h, b) for h, b in warm[i : i + args.concurrency]))
            if profiler is not None:
                profiler.start()
            for r in range(args.rounds):
                began, began_cpu = time.perf_counter(), time.process_time()
                part = raws[r * args.requests : (r + 1) * args.requests]
                for i in range(0, len(part), args.concurrency):  # requests in flight
                    await asyncio.gather(*(one(h, b) for h, b in part[i : i + args.concurrency]))
                rounds.append(time.perf_counter() - began)
                cpu.append(time.process_time() - began_cpu)
            if profiler is not None:
                profiler.stop()
            await events.put({"type": "lifespan.shutdown"})
            await lifespan

        asyncio.run(drive())
        elapsed = min(rounds)
        if isinstance(profiler, cProfile.Profile):
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            if args.dump:
                profiler.dump_stats(args.dump)
        elif profiler is not None:
            print(profiler.output_text(unicode=True, color=False, show_all=False))
        n = args.requests
        per = 1 if args.operation == "meter" else 25
        print(
            f"{n} requests in {elapsed:.2f} s{' (best round)' if args.rounds > 1 else ''}: "
            f"{elapsed / n * 1e6:.0f} µs per request, "
            f"{n * per / elapsed:,.0f} records/s{'' if args.bare else ' (under the profiler)'}; "
            f"CPU {min(cpu) / n * 1e6:.0f} µs per request"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
