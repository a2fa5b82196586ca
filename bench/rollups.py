"""A/B of the usage rollups' cost on the write path: the same build, requests and
databases, with the rollups kept in step with every insert (as served) and without them
(`bench/without_rollups.py`), in alternating rounds (`bench/alternate.py`). The usage
reports' issue allows the rollups at most 10% of the insert path's throughput; `make
bench` runs each pair once, this as often as asked:

    .venv/bin/python bench/rollups.py --rounds 6 --seconds 5 [--no-postgres]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.alternate import alternate, arguments
from bench.run import Databases, Scenario

SIDES = [
    ("BatchMeterUsage, marketmeter, SQLite", "batch", "sqlite", 1),
    ("MeterUsage, marketmeter, SQLite", "meter", "sqlite", 1),
    ("BatchMeterUsage, marketmeter, SQLite, 2 workers", "batch", "sqlite", 2),
    ("BatchMeterUsage scattered, marketmeter, SQLite, 2 workers", "scattered", "sqlite", 2),
    ("BatchMeterUsage, marketmeter, PostgreSQL, 2 workers", "batch", "postgresql", 2),
    ("MeterUsage, marketmeter, PostgreSQL, 2 workers", "meter", "postgresql", 2),
]


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--only", help="the pairs whose name contains one of these ('; ')")
    args = parser.parse_args()
    postgres = not args.no_postgres and Databases.postgres_installed()
    pairs = [
        (
            Scenario(name, "marketmeter", operation, store, workers),
            Scenario(
                f"{name}, no rollups", "marketmeter", operation, store, workers, rollups=False
            ),
        )
        for name, operation, store, workers in SIDES
        if (postgres or store != "postgresql")
        and (not args.only or any(w.strip() and w.strip() in name for w in args.only.split(";")))
    ]
    alternate(pairs, args, labels=("rollups", "none"))


if __name__ == "__main__":
    main()
