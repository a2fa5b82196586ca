"""Catalog changes, from the transaction that made them to the cache of every process.

A transaction that changed the catalog publishes its changes before it commits: the
catalog version goes up by one, and the `catalog_changes` log gets a row for that version
(a JSON list of `CatalogChange`); on PostgreSQL a `NOTIFY marketmeter_catalog` with the
version goes out at the commit. A process hears of new versions without asking the
database (a notification; on SQLite a counter in shared memory) and only then reads the
log rows it has not seen — one query per change, none per request. A version it cannot
account for (a log pruned meanwhile, a connection lost) means: assume everything changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import msgspec

from marketmeter.domain.ports import CatalogChange
from marketmeter.store.sql.runner import Runner

CHANNEL = "marketmeter_catalog"
KEEP = 10_000
"""Log rows kept; a process further behind than that drops its whole cache."""
MAX_LISTED = 200
"""A transaction with more changes (a catalog file) publishes one "all" change."""
SAFETY_INTERVAL = 1.0
"""Seconds between a process's checks of the catalog version itself, in case it missed
an announcement (a writer killed between its commit and its announcement, a change made
by hand)."""

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(list[CatalogChange]).decode
_EVERYTHING = CatalogChange("all")


def publish(run: Runner, changes: list[CatalogChange]) -> int | None:
    """In the transaction, just before its commit: bump the version, log the changes,
    notify. The new version, or None when there was nothing to publish."""
    if not changes:
        return None
    if len(changes) > MAX_LISTED or any(c.kind == "all" for c in changes):
        changes = [_EVERYTHING]
    row = run.fetchone(
        "UPDATE catalog_version SET version = version + 1 WHERE id = 1 RETURNING version", ()
    )
    version = int(row[0])
    run.execute(
        "INSERT INTO catalog_changes (version, changes) VALUES (?, ?)",
        (version, _encode(changes).decode()),
    )
    if version % 100 == 0:
        run.execute("DELETE FROM catalog_changes WHERE version <= ?", (version - KEEP,))
    if run.dialect == "postgresql":
        run.fetchone("SELECT pg_notify(?, ?)", (CHANNEL, str(version)))
    return version


def current_version(run: Runner) -> int:
    return int(run.fetchone("SELECT version FROM catalog_version WHERE id = 1", ())[0])


class LogWatch:
    """A `CatalogWatch` of either store: what has been taken, what is known to be
    committed, and the log between the two. Subclasses hear of new versions."""

    def __init__(self, reads: Callable[[], Runner]) -> None:
        self._reads = reads
        version = current_version(reads())
        self._taken = version  # changes up to this version are handed out
        self._known = version  # committed, as far as this process has heard
        self._lost = False  # announcements may have been missed
        self._lock = threading.Lock()

    def announce(self, version: int) -> None:
        """A version known to be committed (a notification, a commit of this process)."""
        self._known = max(self._known, version)

    def lose(self) -> None:
        """Announcements may have been missed: the next `take` answers "everything"."""
        self._lost = True

    def changed(self) -> bool:
        return self._lost or self._known > self._taken

    def confirm(self) -> None:
        self.announce(current_version(self._reads()))

    def take(self) -> list[CatalogChange] | None:
        with self._lock:
            run = self._reads()
            if self._lost:
                self._lost = False  # before reading: a loss from now on is kept
                self._taken = self._known = max(self._known, current_version(run))
                return None
            if self._known <= self._taken:
                return []
            rows = run.fetchall(
                "SELECT version, changes FROM catalog_changes WHERE version > ? ORDER BY version",
                (self._taken,),
            )
            versions = [int(r[0]) for r in rows]
            last = max([self._known, *versions])
            complete = versions == list(range(self._taken + 1, last + 1))
            self._taken = self._known = last
            if not complete:
                return None
            changes = [c for r in rows for c in _decode(r[1])]
            return None if any(c.kind == "all" for c in changes) else changes

    def close(self) -> None:
        pass
