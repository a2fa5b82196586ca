"""`marketmeter` without the per-request deadlines of its HTTP protocol
(`server/one_write.py`): the "before" of their cost (`bench/feature_cost.py deadlines`).

Run as `python -m bench.without_deadlines serve …` (arguments as `marketmeter`'s); the
change is made on import, so uvicorn's worker processes make it too. Never used outside
bench/.
"""

from __future__ import annotations

from marketmeter.server.one_write import OneWriteHttpToolsProtocol


def _no_deadline(self: OneWriteHttpToolsProtocol, seconds: float | None = None) -> None:
    return None


OneWriteHttpToolsProtocol._arm = _no_deadline  # type: ignore[method-assign]

if __name__ == "__main__":
    from marketmeter.cli import main

    main()
