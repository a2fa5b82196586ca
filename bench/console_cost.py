"""A/B of the console's cost to the AWS endpoint: the same build, requests and databases,
with the console (as served) and without it (`bench/without_console.py`), in alternating
rounds (`bench/alternate.py`). The console's issue asks that it add no time to the AWS
endpoint's requests; `make bench` runs each pair once, this as often as asked:

    .venv/bin/python bench/console_cost.py --rounds 6 --seconds 5
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.alternate import alternate, arguments
from bench.run import Scenario

SIDES = [
    ("MeterUsage, marketmeter, SQLite", "meter"),
    ("BatchMeterUsage, marketmeter, SQLite", "batch"),
]


def main() -> None:
    args = arguments(__doc__).parse_args()
    pairs = [
        (
            Scenario(name, "marketmeter", operation, "sqlite"),
            Scenario(f"{name}, no console", "marketmeter", operation, "sqlite", console=False),
        )
        for name, operation in SIDES
    ]
    alternate(pairs, args, labels=("console", "none"))


if __name__ == "__main__":
    main()
