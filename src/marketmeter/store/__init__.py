"""Storage: one small interface (`base`); SQLite (the embedded default) and PostgreSQL
(production) implementations on one set of queries (`sql`); a catalog cache (`cache`).

This package holds the only SQL in marketmeter. Exactly-once is enforced here by unique
keys (`INSERT … ON CONFLICT DO NOTHING`), never by a read-then-write in Python.
"""

from marketmeter.domain.ports import Reader, Store, StoreConflict, StoreUnavailable, Transaction
from marketmeter.store.factory import open_store

__all__ = ["Reader", "Store", "StoreConflict", "StoreUnavailable", "Transaction", "open_store"]
