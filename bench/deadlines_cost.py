"""A/B of the cost of the per-request deadlines (`server/one_write.py`): the same build,
requests and databases, with the deadlines (as served) and without
(`bench/without_deadlines.py`), in alternating rounds (`bench/alternate.py`).

    .venv/bin/python bench/deadlines_cost.py --rounds 4 --seconds 5
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.alternate import alternate, arguments
from bench.run import Scenario

SIDES = [
    ("BatchMeterUsage, marketmeter, SQLite", "batch"),
    ("MeterUsage, marketmeter, SQLite", "meter"),
]


def main() -> None:
    args = arguments(__doc__).parse_args()
    pairs = [
        (
            Scenario(name, "marketmeter", operation, "sqlite", 1),
            Scenario(
                f"{name}, no deadlines",
                "marketmeter",
                operation,
                "sqlite",
                1,
                variant="bench.without_deadlines",
            ),
        )
        for name, operation in SIDES
    ]
    alternate(pairs, args, labels=("deadlines", "none"))


if __name__ == "__main__":
    main()
