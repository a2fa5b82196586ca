"""A/B of the one-write protocol (`marketmeter.server.one_write`) against uvicorn's own,
which writes a response's head and body apart: does writing each response in one piece
cost throughput?

The same server, application and requests, both ways, in alternating rounds (A B B A …)
so that the machine's drift from minute to minute falls on both alike; the answer is the
median of the per-round ratios. `make bench` runs the two ways once each; this runs them
as often as asked:

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
            throughput, p99 = [], []
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
                p99.append(got[False].p99_ms / got[True].p99_ms)
                print(
                    f"· {name}, round {i + 1}: one write {got[False].requests_per_s:,.0f} "
                    f"requests/s, two writes {got[True].requests_per_s:,.0f}",
                    flush=True,
                )
            rows.append((name, throughput, p99))
    finally:
        dbs.close()
        shutil.rmtree(work, ignore_errors=True)
    print("\n| scenario | one write ÷ two writes, requests/s (median; range) | p99 ratio |")
    print("|---|---:|---:|")
    for name, throughput, p99 in rows:
        print(
            f"| {name} | {statistics.median(throughput):.3f} "
            f"({min(throughput):.2f}–{max(throughput):.2f}) | {statistics.median(p99):.2f} |"
        )


if __name__ == "__main__":
    main()
