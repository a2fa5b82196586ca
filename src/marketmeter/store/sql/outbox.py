"""Notification targets (SNS webhooks, EventBridge targets), the outbox of deliveries with
their attempts, the SNS signing key, and the test controls.

Deliveries are claimed with a lease (`claimed_until`): an `UPDATE … WHERE id IN (SELECT …)`
that any number of processes may run at once (on PostgreSQL, `FOR UPDATE SKIP LOCKED`), so
each due delivery goes to one of them; one killed while sending leaves a lease that runs
out, and the delivery is sent again, with the same id.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
import orjson

from marketmeter.domain.controls import Faults, TestControls
from marketmeter.domain.outbox import Attempt, Delivery
from marketmeter.domain.ports import CatalogChange
from marketmeter.domain.targets import EventTarget, Webhook
from marketmeter.instants import from_ms, to_ms
from marketmeter.store import secrets
from marketmeter.store.codec import dump_json, opt_from_ms, opt_to_ms
from marketmeter.store.sql.runner import Runner, any_of

_WEBHOOK_COLUMNS = (
    "id, product_code, topic, url, signature_version, token, created_at, confirmed_at"
)
_TARGET_COLUMNS = "id, url, product_code, headers, created_at"
_DELIVERY_COLUMNS = (
    "id, kind, target_id, product_code, name, body, created_at, due_at, status, attempts, "
    "next_attempt_at, last_status, last_error, delivered_at, cancel_key"
)
_RETRYABLE = "(status = 'failed' OR (status = 'pending' AND attempts > 0))"
"""`outbox.retryable` in SQL: failed, or being retried after a failed attempt."""
_faults = msgspec.json.Decoder(Faults)


CLAIM_LOCK = 0x6D6D_636C_6D64
"""PostgreSQL: the advisory lock a claiming transaction holds (one at a time)."""


class OutboxReads:
    def _runner(self) -> Runner:
        raise NotImplementedError

    def list_webhooks(self, product_code: str | None = None) -> list[Webhook]:
        sql = f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks"
        params: tuple[Any, ...] = ()
        if product_code is not None:
            sql, params = sql + " WHERE product_code = ?", (product_code,)
        return [
            _webhook(row) for row in self._runner().fetchall(sql + " ORDER BY created_at", params)
        ]

    def get_webhook(self, webhook_id: str) -> Webhook | None:
        row = self._runner().fetchone(
            f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?", (webhook_id,)
        )
        return None if row is None else _webhook(row)

    def list_event_targets(self, product_code: str | None = None) -> list[EventTarget]:
        sql = f"SELECT {_TARGET_COLUMNS} FROM event_targets"
        params: tuple[Any, ...] = ()
        if product_code is not None:
            sql += " WHERE product_code = ? OR product_code IS NULL"
            params = (product_code,)
        rows = self._runner().fetchall(sql + " ORDER BY created_at", params)
        return [_target(row) for row in rows]

    def list_deliveries(
        self, product_code: str | None = None, *, failed_only: bool = False, limit: int = 1000
    ) -> list[Delivery]:
        conditions, params = [], []
        if product_code is not None:
            conditions.append("product_code = ?")
            params.append(product_code)
        if failed_only:
            conditions.append(_RETRYABLE)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._runner().fetchall(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries{where} ORDER BY seq DESC LIMIT ?",
            [*params, limit],
        )
        return [delivery_from_row(row) for row in rows]

    def attempts_of(self, delivery_ids: Collection[str]) -> dict[str, list[Attempt]]:
        out: dict[str, list[Attempt]] = {i: [] for i in delivery_ids}
        if not out:
            return out
        run = self._runner()
        condition, param = any_of(run.dialect, "delivery_id", out)
        rows = run.fetchall(
            "SELECT delivery_id, attempt, at, status, error FROM delivery_attempts "
            f"WHERE {condition} ORDER BY delivery_id, attempt",
            [param],
        )
        for row in rows:
            out[row[0]].append(Attempt(row[0], row[1], from_ms(row[2]), row[3], row[4]))
        return out

    def count_pending_deliveries(self) -> int:
        row = self._runner().fetchone(
            "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'", ()
        )
        return int(row[0])

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        row = self._runner().fetchone(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)
        )
        return None if row is None else delivery_from_row(row)

    def get_sns_key(self) -> tuple[str, str] | None:
        row = self._runner().fetchone("SELECT private_pem, cert_pem FROM sns_keys WHERE id = 1", ())
        return None if row is None else (secrets.configured().open(row[0], SNS_PLACE), row[1])

    def admin_token_hash(self) -> str | None:
        row = self._runner().fetchone("SELECT token_hash FROM admin_token WHERE id = 1", ())
        return None if row is None else str(row[0])

    def test_controls(self) -> TestControls:
        row = self._runner().fetchone(
            "SELECT clock_offset_ms, faults, internal_errors, served_at FROM test_controls "
            "WHERE id = 1",
            (),
        )
        return TestControls(
            clock_offset=timedelta(milliseconds=row[0]),
            faults=None if row[1] is None else _faults.decode(row[1]),
            internal_errors=row[2],
            served_at=opt_from_ms(row[3]),
        )


class OutboxWrites(OutboxReads):
    changes: list[CatalogChange]

    def insert_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        run = self._runner()
        for d in deliveries:
            run.execute(
                "INSERT INTO deliveries (id, kind, target_id, product_code, name, body, "
                "created_at, due_at, next_attempt_at, status, cancel_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                (
                    d.id,
                    d.kind,
                    d.target_id,
                    d.product_code,
                    d.name,
                    dump_json(d.body),
                    to_ms(d.created_at),
                    to_ms(d.due_at),
                    to_ms(d.next_attempt_at or d.due_at),
                    d.cancel_key,
                ),
            )

    def cancel_deliveries(self, cancel_key: str) -> int:
        return self._runner().execute(
            "UPDATE deliveries SET status = 'cancelled' WHERE cancel_key = ? "
            "AND status = 'pending'",
            (cancel_key,),
        )

    def retry_delivery(self, delivery_id: str, now: datetime) -> Delivery | None:
        # In one statement, so that a delivery finishing meanwhile is not sent again, and
        # one a worker holds (claimed, being sent) is left to it.
        at = to_ms(now)
        rows = self._runner().fetchall(
            "UPDATE deliveries SET next_attempt_at = ?, "
            "due_at = CASE WHEN status = 'failed' THEN ? ELSE due_at END, status = 'pending' "
            f"WHERE id = ? AND {_RETRYABLE} AND (claimed_until IS NULL OR claimed_until < ?) "
            f"RETURNING {_DELIVERY_COLUMNS}",
            (at, at, delivery_id, at),
        )
        return delivery_from_row(rows[0]) if rows else None

    def add_webhook(self, webhook: Webhook) -> bool:
        return (
            self._runner().execute(
                f"INSERT INTO webhooks ({_WEBHOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (product_code, topic, url) DO NOTHING",
                (
                    webhook.id,
                    webhook.product_code,
                    webhook.topic,
                    webhook.url,
                    webhook.signature_version,
                    webhook.token,
                    to_ms(webhook.created_at),
                    opt_to_ms(webhook.confirmed_at),
                ),
            )
            == 1
        )

    def confirm_webhook(self, token: str, at: datetime) -> Webhook | None:
        run = self._runner()
        run.execute(
            "UPDATE webhooks SET confirmed_at = ? WHERE token = ? AND confirmed_at IS NULL",
            (to_ms(at), token),
        )
        row = run.fetchone(f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE token = ?", (token,))
        return None if row is None else _webhook(row)

    def remove_webhook(self, webhook_id: str) -> bool:
        return self._runner().execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,)) == 1

    def add_event_target(self, target: EventTarget) -> bool:
        run = self._runner()
        same = (
            "SELECT 1 FROM event_targets WHERE url = ? AND product_code IS NULL"
            if target.product_code is None
            else "SELECT 1 FROM event_targets WHERE url = ? AND product_code = ?"
        )
        params = (target.url,) if target.product_code is None else (target.url, target.product_code)
        if run.fetchone(same, params) is not None:  # NULLs never conflict in a unique key
            return False
        run.execute(
            f"INSERT INTO event_targets ({_TARGET_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (
                target.id,
                target.url,
                target.product_code,
                dump_json(target.headers),
                to_ms(target.created_at),
            ),
        )
        return True

    def remove_event_target(self, target_id: str) -> bool:
        return self._runner().execute("DELETE FROM event_targets WHERE id = ?", (target_id,)) == 1

    def put_sns_key(self, private_pem: str, cert_pem: str) -> tuple[str, str]:
        self._runner().execute(
            "INSERT INTO sns_keys (id, private_pem, cert_pem) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            (secrets.configured().seal(private_pem, SNS_PLACE), cert_pem),
        )
        kept = self.get_sns_key()
        assert kept is not None
        return kept

    def put_admin_token_hash(self, token_hash: str, at: datetime) -> str:
        self._runner().execute(
            "INSERT INTO admin_token (id, token_hash, created_at) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            (token_hash, to_ms(at)),
        )
        kept = self.admin_token_hash()
        assert kept is not None
        return kept

    def update_test_controls(self, controls: TestControls) -> None:
        """Changed controls are published as a catalog change: every server process obeys
        them from its next request on."""
        faults = None if controls.faults is None else msgspec.json.encode(controls.faults).decode()
        self.changes.append(CatalogChange("controls"))
        self._runner().execute(
            "UPDATE test_controls SET clock_offset_ms = ?, faults = ?, internal_errors = ?, "
            "served_at = ? WHERE id = 1",
            (
                int(controls.clock_offset / timedelta(milliseconds=1)),
                faults,
                controls.internal_errors,
                opt_to_ms(controls.served_at),
            ),
        )

    def mark_test_controls_served(self, at: datetime) -> None:
        self._runner().execute("UPDATE test_controls SET served_at = ? WHERE id = 1", (to_ms(at),))

    def take_internal_error(self) -> bool:
        return (
            self._runner().execute(
                "UPDATE test_controls SET internal_errors = internal_errors - 1 "
                "WHERE id = 1 AND internal_errors > 0",
                (),
            )
            == 1
        )

    def claim_due(self, now: datetime, limit: int, lease: float) -> list[Delivery]:
        """Lease what is due, oldest first — but never a delivery whose target has an
        earlier one leased (being sent, by this process or another): a target receives its
        deliveries in the order they were made, whichever process sends them. Claims take
        turns across processes (SQLite: its write lock; PostgreSQL: an advisory lock), so
        each sees the leases of those before it."""
        run = self._runner()
        lock = ""
        if run.dialect == "postgresql":
            run.execute("SELECT pg_advisory_xact_lock(?)", (CLAIM_LOCK,))
            lock = " FOR UPDATE SKIP LOCKED"
        at = to_ms(now)
        rows = run.fetchall(
            "UPDATE deliveries SET claimed_until = ? WHERE id IN (SELECT id FROM deliveries d "
            "WHERE status = 'pending' AND next_attempt_at <= ? "
            "AND (claimed_until IS NULL OR claimed_until < ?) "
            "AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.status = 'pending' "
            "AND e.target_id = d.target_id AND e.seq < d.seq AND e.claimed_until >= ?) "
            f"ORDER BY next_attempt_at, seq LIMIT ?{lock}) RETURNING {_DELIVERY_COLUMNS}, seq",
            (to_ms(now + timedelta(seconds=lease)), at, at, at, limit),
        )
        rows.sort(key=lambda row: row[-1])
        return [delivery_from_row(row) for row in rows]

    def finish(
        self,
        delivery: Delivery,
        attempt: Attempt,
        *,
        delivered: bool,
        retry_at: datetime | None,
    ) -> None:
        run = self._runner()
        run.execute(
            "INSERT INTO delivery_attempts (delivery_id, attempt, at, status, error) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (delivery_id, attempt) DO NOTHING",
            (
                attempt.delivery_id,
                attempt.attempt,
                to_ms(attempt.at),
                attempt.status,
                attempt.error,
            ),
        )
        status = "delivered" if delivered else ("pending" if retry_at is not None else "failed")
        run.execute(
            "UPDATE deliveries SET status = ?, attempts = ?, last_status = ?, last_error = ?, "
            "delivered_at = ?, next_attempt_at = ?, claimed_until = NULL "
            "WHERE id = ? AND status = 'pending'",
            (
                status,
                attempt.attempt,
                attempt.status,
                attempt.error,
                to_ms(attempt.at) if delivered else None,
                to_ms(retry_at) if retry_at is not None else to_ms(attempt.at),
                delivery.id,
            ),
        )


SNS_PLACE = secrets.place("sns_keys", "private_pem", "1")


class OutboxStore:
    """The delivery worker's two calls, each a transaction of its own (either store)."""

    def transaction(self) -> Any:
        raise NotImplementedError

    def claim_deliveries(self, now: datetime, limit: int, lease: float) -> list[Delivery]:
        with self.transaction() as tx:
            claimed: list[Delivery] = tx.claim_due(now, limit, lease)
        return claimed

    def finish_attempt(
        self,
        delivery: Delivery,
        attempt: Attempt,
        *,
        delivered: bool,
        retry_at: datetime | None,
    ) -> None:
        with self.transaction() as tx:
            tx.finish(delivery, attempt, delivered=delivered, retry_at=retry_at)


def delivery_from_row(row: Any) -> Delivery:
    return Delivery(
        id=row[0],
        kind=row[1],
        target_id=row[2],
        product_code=row[3],
        name=row[4],
        body=orjson.loads(row[5]),
        created_at=from_ms(row[6]),
        due_at=from_ms(row[7]),
        status=row[8],
        attempts=row[9],
        next_attempt_at=from_ms(row[10]),
        last_status=row[11],
        last_error=row[12],
        delivered_at=opt_from_ms(row[13]),
        cancel_key=row[14],
    )


def _webhook(row: Any) -> Webhook:
    return Webhook(
        row[0], row[1], row[2], row[3], row[4], row[5], from_ms(row[6]), opt_from_ms(row[7])
    )


def _target(row: Any) -> EventTarget:
    return EventTarget(row[0], row[1], row[2], orjson.loads(row[3]), from_ms(row[4]))
