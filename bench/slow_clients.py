"""How much slower a normal client is answered while hostile ones attack the server (the
production issue asks: within 2× of its unloaded p99). A real server (SQLite, one worker,
`--request-timeout 4`), one seller re-sending a batch 200 times alone, then again while
another process runs 2,000 idle connections, 150 slowloris clients, 50 slow bodies and 2
endless chunked bodies (`tests/compat/slow_clients.py`); alternating rounds, the median
of the per-round ratios of p99 (attacked ÷ alone).

    .venv/bin/python bench/slow_clients.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.compat.conftest import pool_account, recent, start_server  # noqa: E402
from tests.compat.slow_clients import MIX, launch  # noqa: E402
from tests.compat.test_slow_clients import TIMEOUT, p99  # noqa: E402
from tests.factories import SAAS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    for kind, default in MIX.items():
        option = f"--{kind.replace('_', '-')}"
        parser.add_argument(option, type=int, default=default, help=f"default {default}")
    args = parser.parse_args()
    mix = {kind: getattr(args, kind) for kind in MIX}
    ratios = []
    with tempfile.TemporaryDirectory(prefix="marketmeter-slow-") as work:
        directory = Path(work)
        server = start_server(
            f"sqlite:///{directory / 'slow.db'}", directory, "--request-timeout", str(TIMEOUT)
        )
        try:
            for round_ in range(1, args.rounds + 1):
                record = {
                    "Timestamp": recent(),
                    "CustomerAWSAccountId": pool_account(round_),
                    "Dimension": "users",
                    "Quantity": 1,
                }
                batch = {"ProductCode": SAAS, "UsageRecords": [record]}
                alone = p99(server, batch)
                attack = launch(server.port, directory / "report.json", TIMEOUT * 3, mix)
                time.sleep(1.0)
                attacked = p99(server, batch)
                attack.wait(timeout=60)
                ratios.append(attacked / alone)
                print(
                    f"round {round_}: p99 alone {alone * 1000:.1f} ms, attacked "
                    f"{attacked * 1000:.1f} ms: {attacked / alone:.2f}×",
                    flush=True,
                )
        finally:
            server.stop()
    print(
        f"\nmedian of {args.rounds} rounds: attacked ÷ alone p99 = {statistics.median(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
