"""The SQL both stores share, by noun: `catalog` (and registration tokens), `metering`
(records and ClientTokens), `usage` (the rollups reports read), `entitlements`, `outbox`
(notification targets, deliveries, test controls), `changes` (how catalog changes reach
every process), `migrate`. Queries
are written once with `?` placeholders; a dialect's `Runner` executes them. Both SQLite
and PostgreSQL understand `INSERT … ON CONFLICT`, which is how every claim is made: the
unique key decides, never a read-then-write in Python.
"""

from __future__ import annotations

from marketmeter.domain.models import MeteringRecord
from marketmeter.domain.ports import CatalogChange
from marketmeter.store.sql.catalog import CatalogReads, CatalogWrites
from marketmeter.store.sql.changes import publish
from marketmeter.store.sql.entitlements import EntitlementReads, EntitlementWrites
from marketmeter.store.sql.metering import (
    MeteringReads,
    MeteringWrites,
    record_from_row,
    records_query,
)
from marketmeter.store.sql.migrate import SchemaReads, migrate
from marketmeter.store.sql.outbox import OutboxReads, OutboxStore, OutboxWrites
from marketmeter.store.sql.runner import Runner
from marketmeter.store.sql.usage import (
    FoldSchedule,
    UsageReads,
    add_usage,
    fold_usage,
)


class SqlReader(
    CatalogReads, MeteringReads, EntitlementReads, OutboxReads, UsageReads, SchemaReads
):
    """The `Reader` methods, run by `self._runner()`."""


class SqlTransaction(SqlReader, CatalogWrites, MeteringWrites, EntitlementWrites, OutboxWrites):
    """Reads and writes on one connection, inside the transaction the store opened."""

    def __init__(self, runner: Runner) -> None:
        self._run = runner
        self.changes: list[CatalogChange] = []
        self.stored: list[MeteringRecord] = []

    def _runner(self) -> Runner:
        return self._run

    def log_stored_usage(self) -> int:
        """Just before the commit: the stored records' sums into the usage log; the number
        of rows the log grew by."""
        appended = add_usage(self._run, self.stored)
        self.stored = []
        return appended

    def publish_changes(self) -> int | None:
        """Just before the commit: the catalog's new version, or None if unchanged."""
        return publish(self._run, self.changes)


__all__ = [
    "FoldSchedule",
    "OutboxStore",
    "Runner",
    "SqlReader",
    "SqlTransaction",
    "add_usage",
    "fold_usage",
    "migrate",
    "record_from_row",
    "records_query",
]
