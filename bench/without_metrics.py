"""`marketmeter` with its metrics left out (`metrics.py`'s recording functions do nothing):
the "before" of the metrics' cost on the write path, in the same build
(`bench/feature_cost.py metrics`).

Run as `python -m bench.without_metrics serve …` (arguments as `marketmeter`'s); the
change is made on import, so uvicorn's worker processes make it too. Never used outside
bench/.
"""

from __future__ import annotations

from typing import Any

from marketmeter import metrics


def _nothing(*_: Any) -> None:
    return None


metrics.request_answered = _nothing
metrics.group_committed = _nothing
metrics.group_failed = _nothing
metrics.delivery_attempted = _nothing

if __name__ == "__main__":
    from marketmeter.cli import main

    main()
