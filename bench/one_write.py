"""A/B of the one-write protocol (`marketmeter.server.one_write`) against uvicorn's own,
which writes a response's head and body apart: does writing each response in one piece
cost throughput?

The same server, application and requests, both ways, in alternating rounds (A B B A …)
so that the machine's drift from minute to minute falls on both alike; the answer is the
median of the per-round ratios, of throughput and of the server's CPU time (user and
system, from /proc) per request — the steadier of the two on a shared machine. `make bench`
runs the two ways once each; this runs them as often as asked:

    .venv/bin/python bench/one_write.py --rounds 6 --seconds 5
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import Databases, RequestFiles, Result, Scenario, measure

PAIRS = [
    ("MeterUsage, ceiling", "ceiling", "meter", None),
    ("MeterUsage, marketmeter, SQLite", "marketmeter", "meter", "sqlite"),
    ("BatchMeterUsage, marketmeter, SQLite", "marketmeter", "batch", "sqlite"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (make bench does it)")
    work = Path(tempfile.mkdtemp(prefix="marketmeter-ab-"))
    dbs = Databases(work)
    files = RequestFiles(work, batch_count=30_000, meter_count=150_000)
    rows = []
    try:
        for name, target, operation, store in PAIRS:
            one = Scenario(name, target, operation, store)
            two = Scenario(f"{name}, two writes", target, operation, store, two_writes=True)
            throughput, cpu = [], []
            for i in range(args.rounds):
                order = (one, two) if i % 2 == 0 else (two, one)
                got: dict[bool, Result] = {}
                for scenario in order:
                    got[scenario.two_writes] = measure(
                        scenario,
                        dbs,
                        files.ready(),
                        seconds=args.seconds,
                        connections=args.connections,
                        work=work,
                    )
                throughput.append(got[False].requests_per_s / got[True].requests_per_s)
                cpu.append(got[False].cpu_us_per_request / got[True].cpu_us_per_request)
                print(
                    f"· {name}, round {i + 1}: one write {got[False].requests_per_s:,.0f} "
                    f"requests/s, {got[False].cpu_us_per_request:.1f} µs of CPU each; two "
                    f"writes {got[True].requests_per_s:,.0f}, "
                    f"{got[True].cpu_us_per_request:.1f} µs",
                    flush=True,
                )
            rows.append((name, throughput, cpu))
    finally:
        dbs.close()
        shutil.rmtree(work, ignore_errors=True)
    print("\n| scenario | one write ÷ two writes: requests/s | CPU per request |")
    print("|---|---:|---:|")
    for name, throughput, cpu in rows:
        print(f"| {name} | {spread(throughput)} | {spread(cpu)} |")


def spread(ratios: list[float]) -> str:
    """The median of the rounds' ratios, and their range."""
    return f"{statistics.median(ratios):.3f} ({min(ratios):.2f}–{max(ratios):.2f})"


if __name__ == "__main__":
    main()
