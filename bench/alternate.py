"""A/B runs in alternating rounds (A B, B A, …), so that the machine's drift from minute to
minute falls on both sides alike. The answer is the median of the per-round ratios A ÷ B,
of records per second and of the server's CPU time (user and system, from /proc) per
record — the steadier of the two on a shared machine. Used by `bench/one_write.py` and
`bench/rollups.py`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench.run import Databases, RequestFiles, Result, Scenario, measure


def arguments(description: str | None) -> argparse.ArgumentParser:
    """The options every A/B script takes (`--rounds`, `--seconds`, `--connections`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    return parser


def alternate(
    pairs: list[tuple[Scenario, Scenario]], args: argparse.Namespace, labels: tuple[str, str]
) -> None:
    """Measure each (A, B) pair `args.rounds` times and print the table of ratios A ÷ B."""
    rounds, seconds, connections = args.rounds, args.seconds, args.connections
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (make bench does it)")
    work = Path(tempfile.mkdtemp(prefix="marketmeter-ab-"))
    dbs = Databases(work)
    files = RequestFiles(work, batch_count=30_000, meter_count=150_000)
    rows = []
    try:
        for a, b in pairs:
            throughput, cpu = [], []
            for i in range(rounds):
                order = (a, b) if i % 2 == 0 else (b, a)
                got: dict[int, Result] = {}
                for scenario in order:
                    got[id(scenario)] = measure(
                        scenario,
                        dbs,
                        files.ready(),
                        seconds=seconds,
                        connections=connections,
                        work=work,
                    )
                ra, rb = got[id(a)], got[id(b)]
                throughput.append(ra.records_per_s / rb.records_per_s)
                cpu.append(ra.cpu_us_per_record / rb.cpu_us_per_record)
                print(
                    f"· {a.name}, round {i + 1}: {labels[0]} {ra.records_per_s:,.0f} "
                    f"records/s, {ra.cpu_us_per_record:.1f} µs of CPU each, p99 {ra.p99_ms:.0f} "
                    f"ms; {labels[1]} {rb.records_per_s:,.0f}, {rb.cpu_us_per_record:.1f} µs, "
                    f"p99 {rb.p99_ms:.0f} ms",
                    flush=True,
                )
            rows.append((a.name, throughput, cpu))
    finally:
        dbs.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n| scenario | {labels[0]} ÷ {labels[1]}: records/s | CPU per record |")
    print("|---|---:|---:|")
    for name, throughput, cpu in rows:
        print(f"| {name} | {spread(throughput)} | {spread(cpu)} |")


def spread(ratios: list[float]) -> str:
    """The median of the rounds' ratios, and their range."""
    return f"{statistics.median(ratios):.3f} ({min(ratios):.2f}–{max(ratios):.2f})"
