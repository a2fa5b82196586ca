"""A/B of what one feature costs the write path: the same build, requests and databases,
with the feature (as served) and without it (`bench/without_<feature>.py`, which changes
marketmeter as it is imported), in alternating rounds (`bench/alternate.py`).

    .venv/bin/python bench/feature_cost.py metrics|deadlines [--rounds 4] [--seconds 5]

- `metrics`: the metrics' recording (`metrics.py`);
- `deadlines`: the per-request deadlines of the HTTP protocol (`server/one_write.py`).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.alternate import alternate, arguments
from bench.run import Scenario

FEATURES = ("metrics", "deadlines")
SIDES = [
    ("BatchMeterUsage, marketmeter, SQLite", "batch"),
    ("MeterUsage, marketmeter, SQLite", "meter"),
]


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("feature", choices=FEATURES)
    args = parser.parse_args()
    pairs = [
        (
            Scenario(name, "marketmeter", operation, "sqlite", 1),
            Scenario(
                f"{name}, no {args.feature}",
                "marketmeter",
                operation,
                "sqlite",
                1,
                variant=f"bench.without_{args.feature}",
            ),
        )
        for name, operation in SIDES
    ]
    alternate(pairs, args, labels=(args.feature, "none"))


if __name__ == "__main__":
    main()
