"""A/B of PostgreSQL's claims sent ahead (the first claims of a group's units —
BatchMeterUsage's records, MeterUsage's record and ClientToken — in one statement,
`store/postgres.py`) against one round trip a unit
(`bench/without_claims_ahead.py`): the same build, requests and databases, in alternating
rounds (`bench/alternate.py`).

    .venv/bin/python bench/claims_ahead.py --rounds 6 --seconds 5
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.alternate import alternate, arguments
from bench.run import Databases, Scenario

SIDES = [
    ("BatchMeterUsage, marketmeter, PostgreSQL, 2 workers", "batch", 2),
    ("BatchMeterUsage scattered, marketmeter, PostgreSQL, 2 workers", "scattered", 2),
    ("BatchMeterUsage, marketmeter, PostgreSQL, 1 worker", "batch", 1),
    ("MeterUsage, marketmeter, PostgreSQL, 2 workers", "meter", 2),
]


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--only", help="the pairs whose name contains one of these ('; ')")
    args = parser.parse_args()
    if not Databases.postgres_installed():
        sys.exit("PostgreSQL is not installed (make test installs it)")
    pairs = [
        (
            Scenario(name, "marketmeter", operation, "postgresql", workers),
            Scenario(
                f"{name}, a round trip a unit",
                "marketmeter",
                operation,
                "postgresql",
                workers,
                variant="bench.without_claims_ahead",
            ),
        )
        for name, operation, workers in SIDES
        if not args.only or any(w.strip() and w.strip() in name for w in args.only.split(";"))
    ]
    alternate(pairs, args, labels=("ahead", "one by one"))


if __name__ == "__main__":
    main()
