"""`marketmeter` with the usage rollups left out of the write path: the "before" of the
rollups' cost, in the same build (`bench/rollups.py`, and the pairs of `make bench`).
Records without allocations are their own log on both stores (folds read them from
their table): nothing appended means no folds.

Run as `python -m bench.without_rollups serve …` (arguments as `marketmeter`'s). The
change is made on import, so the worker processes that uvicorn spawns (which import this
module again as their main module) run without rollups too. Never used outside bench/.
"""

from __future__ import annotations

from collections.abc import Iterable

from marketmeter.domain.models import MeteringRecord
from marketmeter.store import postgres, sqlite
from marketmeter.store.sql import Runner, SqlTransaction


def _skip_stored(self: SqlTransaction) -> int:
    self.stored = []
    return 0


def _skip(run: Runner, records: Iterable[MeteringRecord]) -> int:
    return 0


# Every way a transaction adds to the rollups' log: one transaction's records (outside a
# group) and a group commit's, on either store. (Nothing appended: no folds.)
SqlTransaction.log_stored_usage = _skip_stored  # type: ignore[method-assign]
sqlite.add_usage = _skip
postgres.add_usage = _skip

if __name__ == "__main__":
    from marketmeter.cli import main

    main()
