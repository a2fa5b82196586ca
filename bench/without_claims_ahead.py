"""`marketmeter` whose PostgreSQL groups send each unit's first claim when the unit runs
— one round trip a unit — rather than all of a group's ahead in one statement:
the "before" of `bench/claims_ahead.py`, in the same build.

Run as `python -m bench.without_claims_ahead serve …` (arguments as `marketmeter`'s); the
change is made on import, so uvicorn's worker processes make it too. Never used outside
bench/.
"""

from __future__ import annotations

from marketmeter.store import postgres

postgres.CLAIMS_AHEAD = False

if __name__ == "__main__":
    from marketmeter.cli import main

    main()
