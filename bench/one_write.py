"""A/B of the one-write protocol (`marketmeter.server.one_write`) against uvicorn's own,
which writes a response's head and body apart: does writing each response in one piece
cost throughput?

The same server, application and requests, both ways, in alternating rounds
(`bench/alternate.py`). `make bench` runs the two ways once each; this runs them as often
as asked:

    .venv/bin/python bench/one_write.py --rounds 6 --seconds 5
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.alternate import alternate, arguments
from bench.run import Scenario

SIDES = [
    ("MeterUsage, ceiling", "ceiling", "meter", None),
    ("MeterUsage, marketmeter, SQLite", "marketmeter", "meter", "sqlite"),
    ("BatchMeterUsage, marketmeter, SQLite", "marketmeter", "batch", "sqlite"),
]


def main() -> None:
    parser = arguments(__doc__)
    args = parser.parse_args()
    pairs = [
        (
            Scenario(name, target, operation, store),
            Scenario(f"{name}, two writes", target, operation, store, two_writes=True),
        )
        for name, target, operation, store in SIDES
    ]
    alternate(pairs, args, labels=("one write", "two writes"))


if __name__ == "__main__":
    main()
