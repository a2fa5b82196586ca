"""The agent's durable outbox: an SQLite file (WAL) of usage summed per customer,
dimension, tag set and hour of use, and what became of each hour's record.

A *group* — one customer's dimension in one hour — is what becomes one record on the wire
(its tag sets become the record's allocations). Its rows are `open` until a sender claims
them; a claim counts an attempt and takes a lease, so that of several processes sharing
the file one sends each group, and one killed while sending leaves a lease that runs out.
Once a group was attempted its quantity is frozen (a lost answer may have stored it):
usage for its hour recorded later is kept apart as *late*, failed, never added. A group
ends `sent` (with its MeteringRecordId), `failed` (with the reason) or `expired` (its
window closed first).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marketmeter.agent.rules import Tags

FORMAT = "marketmeter-agent-outbox"
VERSION = "1"
LATE = "recorded after its hour was sent: not metered (send it within the hour, or earlier)"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage (
    id                 INTEGER PRIMARY KEY,
    product_code       TEXT NOT NULL,
    mode               TEXT NOT NULL,
    customer_kind      TEXT NOT NULL,
    customer           TEXT NOT NULL,
    license_arn        TEXT NOT NULL,
    dimension          TEXT NOT NULL,
    hour               INTEGER NOT NULL,
    tags               TEXT NOT NULL,
    generation         INTEGER NOT NULL,
    micros             INTEGER NOT NULL,
    fractional         INTEGER NOT NULL,
    state              TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    REAL NOT NULL DEFAULT 0,
    claimed_until      REAL,
    reason             TEXT,
    metering_record_id TEXT,
    updated_at         REAL NOT NULL,
    UNIQUE (product_code, mode, customer_kind, customer, license_arn, dimension, hour, tags,
            generation)
);
CREATE INDEX IF NOT EXISTS usage_due ON usage (state, hour);
"""
_GROUP = "product_code, mode, customer_kind, customer, license_arn, dimension, hour"


@dataclass(frozen=True, slots=True)
class UsageKey:
    product_code: str
    mode: str  # batch | resource
    customer_kind: str  # identifier | account | resource
    customer: str
    license_arn: str
    dimension: str
    hour: int
    tags: Tags


@dataclass(frozen=True, slots=True)
class Group:
    """One record to send: a customer's dimension in one hour, with its tag sets."""

    product_code: str
    mode: str
    customer_kind: str
    customer: str
    license_arn: str
    dimension: str
    hour: int
    attempts: int
    parts: tuple[tuple[Tags, int, bool], ...]
    """(tags, micros, fractional) of each tag set."""

    @property
    def micros(self) -> int:
        return sum(p[1] for p in self.parts)

    @property
    def fractional(self) -> bool:
        return any(p[2] for p in self.parts) or self.micros % 1_000_000 != 0

    def key(self) -> tuple[str, ...]:
        return (self.product_code, self.mode, self.customer_kind, self.customer,
                self.license_arn, self.dimension, str(self.hour))  # fmt: skip


class OutboxError(RuntimeError):
    """The file is not an outbox of this agent (or is damaged): never silently reset."""


class Outbox:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._check_or_create()
        except sqlite3.DatabaseError as exc:
            raise OutboxError(f"{self.path} is not a usable outbox: {exc}") from None

    def _check_or_create(self) -> None:
        tables = {
            r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if tables and "agent_meta" not in tables:
            raise OutboxError(
                f"{self.path} is an SQLite database of something else (tables: "
                f"{', '.join(sorted(tables))}), not a marketmeter agent outbox"
            )
        if not tables:
            self._conn.executescript(_SCHEMA)  # IF NOT EXISTS: processes may race here
        with self._transaction() as conn:
            meta = dict(conn.execute("SELECT key, value FROM agent_meta").fetchall())
            if not meta:
                conn.executemany(
                    "INSERT INTO agent_meta (key, value) VALUES (?, ?)",
                    [("format", FORMAT), ("version", VERSION), ("id", str(uuid.uuid4()))],
                )
                meta = dict(conn.execute("SELECT key, value FROM agent_meta").fetchall())
        if meta.get("format") != FORMAT:
            raise OutboxError(f"{self.path} is not a marketmeter agent outbox")
        if meta.get("version") != VERSION:
            raise OutboxError(
                f"{self.path} is an outbox of version {meta.get('version')}; this agent "
                f"reads version {VERSION}"
            )
        self.id = meta["id"]

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- recording -----------------------------------------------------------------------

    def add(self, deltas: dict[UsageKey, tuple[int, bool]], now: float) -> int:
        """Add usage to its open groups, in one transaction; usage of a group already
        attempted is kept apart, failed as late. How many rows were late."""
        late = 0
        with self._transaction() as conn:
            for key, (micros, fractional) in deltas.items():
                values = (*_row(key), micros, int(fractional), now)
                changed = conn.execute(
                    "INSERT INTO usage (product_code, mode, customer_kind, customer, "
                    "license_arn, dimension, hour, tags, generation, micros, fractional, "
                    "state, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 'open', ?) "
                    "ON CONFLICT DO UPDATE SET micros = micros + excluded.micros, "
                    "fractional = max(fractional, excluded.fractional), "
                    "updated_at = excluded.updated_at "
                    "WHERE state = 'open' AND attempts = 0",
                    values,
                ).rowcount
                if changed == 0:
                    late += 1
                    conn.execute(
                        "INSERT INTO usage (product_code, mode, customer_kind, customer, "
                        "license_arn, dimension, hour, tags, generation, micros, fractional, "
                        "state, reason, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, 'failed', ?, ?) "
                        "ON CONFLICT DO UPDATE SET micros = micros + excluded.micros, "
                        "updated_at = excluded.updated_at",
                        (*_row(key), micros, int(fractional), LATE, now),
                    )
        return late

    # -- sending -------------------------------------------------------------------------

    def claim(
        self, *, product_code: str, closed_before: int, now: float, lease: float, limit: int
    ) -> list[Group]:
        """Groups of hours that started before `closed_before`, due now and not leased:
        leased to the caller, an attempt counted."""
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT {_GROUP}, tags, micros, fractional, attempts FROM usage "
                "WHERE state = 'open' AND generation = 0 AND product_code = ? AND hour < ? "
                "AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?) "
                "ORDER BY hour, customer, dimension, tags",
                (product_code, closed_before, now, now),
            ).fetchall()
            groups: dict[tuple[Any, ...], list[Any]] = {}
            for row in rows:
                group_key = tuple(row[:7])
                if group_key not in groups and len(groups) >= limit:
                    continue
                groups.setdefault(group_key, []).append(row)
            found = []
            for group_key, members in groups.items():
                conn.execute(
                    f"UPDATE usage SET attempts = attempts + 1, claimed_until = ? "
                    f"WHERE ({_GROUP}) = (?, ?, ?, ?, ?, ?, ?) AND generation = 0",
                    (now + lease, *group_key),
                )
                found.append(
                    Group(
                        group_key[0],
                        group_key[1],
                        group_key[2],
                        group_key[3],
                        group_key[4],
                        group_key[5],
                        group_key[6],
                        attempts=max(m[10] for m in members) + 1,
                        parts=tuple((_tags(m[7]), m[8], bool(m[9])) for m in members),
                    )
                )
        return found

    def finish(
        self,
        group: Group,
        *,
        state: str,
        now: float,
        reason: str | None = None,
        record_id: str | None = None,
        retry_at: float | None = None,
    ) -> None:
        """`state` sent, failed or expired; or `open` again, to be tried at `retry_at`."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE usage SET state = ?, reason = ?, metering_record_id = ?, "
                "next_attempt_at = ?, claimed_until = NULL, updated_at = ? "
                f"WHERE ({_GROUP}) = (?, ?, ?, ?, ?, ?, ?) AND generation = 0",
                (state, reason, record_id, retry_at or 0.0, now, *group.key()),
            )

    def pending_before(self, product_code: str, closed_before: int) -> int:
        """Groups of closed hours not ended yet (open, or being tried again)."""
        row = self._conn.execute(
            f"SELECT COUNT(*) FROM (SELECT DISTINCT {_GROUP} FROM usage WHERE state = 'open' "
            "AND generation = 0 AND product_code = ? AND hour < ?)",
            (product_code, closed_before),
        ).fetchone()
        return int(row[0])

    # -- reading back ----------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """Per hour, dimension and state: groups, and usage (in millionths)."""
        rows = self._conn.execute(
            "SELECT product_code, hour, dimension, state, COUNT(*), SUM(micros) FROM usage "
            "GROUP BY product_code, hour, dimension, state ORDER BY hour, dimension, state"
        ).fetchall()
        return [
            {
                "product_code": r[0],
                "hour": r[1],
                "dimension": r[2],
                "state": "pending" if r[3] == "open" else r[3],
                "rows": r[4],
                "micros": r[5],
            }
            for r in rows
        ]

    def failures(self) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT product_code, customer, dimension, hour, micros, state, reason FROM usage "
            "WHERE state IN ('failed', 'expired') ORDER BY hour, customer, dimension"
        ).fetchall()
        keys = ("product_code", "customer", "dimension", "hour", "micros", "state", "reason")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def requeue_failures(self, now: float) -> int:
        """Failed groups (not the late rows) to be sent again."""
        with self._transaction() as conn:
            return conn.execute(
                "UPDATE usage SET state = 'open', next_attempt_at = 0, claimed_until = NULL, "
                "updated_at = ? WHERE state = 'failed' AND generation = 0",
                (now,),
            ).rowcount

    def rows(self) -> Iterable[tuple[Any, ...]]:
        return self._conn.execute(
            "SELECT customer, dimension, hour, tags, micros, state, metering_record_id, reason, "
            "generation FROM usage ORDER BY hour, customer, dimension, tags"
        ).fetchall()


def _row(key: UsageKey) -> tuple[Any, ...]:
    tags = json.dumps(key.tags) if key.tags else ""
    return (key.product_code, key.mode, key.customer_kind, key.customer, key.license_arn,
            key.dimension, key.hour, tags)  # fmt: skip


def _tags(text: str) -> Tags:
    return tuple((k, v) for k, v in json.loads(text)) if text else ()
