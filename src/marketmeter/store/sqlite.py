"""The embedded store: SQLite in WAL mode.

One writer connection, behind a lock, runs every transaction with `BEGIN IMMEDIATE`, so
writers of this process queue in Python rather than spin on SQLite's busy handler; other
processes (a CLI command, a second server) wait up to the busy timeout. Reads use one
connection per thread. A transaction's commit returns only once SQLite has it in the WAL,
so a reply sent after it survives a crash of the process (`synchronous=NORMAL`; `FULL`
also survives a power cut, at the cost of an fsync per commit).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from marketmeter.domain.models import (
    AccessKey,
    Account,
    ClientTokenEntry,
    MeteringRecord,
    Product,
    RegistrationToken,
    SigningKey,
    SlotKey,
    Subscription,
)
from marketmeter.domain.quantities import Quantity
from marketmeter.store.base import StoreConflict, StoreUnavailable
from marketmeter.store.codec import (
    allocations_from_json,
    allocations_to_json,
    dump_json,
    from_ms,
    opt_from_ms,
    opt_to_ms,
    to_ms,
)
from marketmeter.store.migrations import migrations_for

_RECORD_COLUMNS = (
    "record_id, product_code, customer_aws_account_id, resource, license_key, dimension, "
    "hour, operation, timestamp, quantity_micros, quantity_text, quantity_as_decimal, "
    "allocations, customer_identifier, license_arn, received_at"
)
_SLOT_WHERE = (
    "product_code = ? AND customer_aws_account_id = ? AND resource = ? AND license_key = ? "
    "AND dimension = ? AND hour = ?"
)


class _QueriesBase:
    """The Reader methods, on `self._conn`."""

    def _db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        with _translate_errors():
            return self._db().execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        with _translate_errors():
            return self._db().execute(sql, params).fetchall()

    def get_access_key(self, access_key_id: str) -> AccessKey | None:
        row = self._one(
            "SELECT access_key_id, secret_access_key, account_id, session_token, expires_at, "
            "region, platform, actions FROM access_keys WHERE access_key_id = ?",
            (access_key_id,),
        )
        if row is None:
            return None
        actions = None if row[7] is None else frozenset(orjson.loads(row[7]))
        return AccessKey(
            row[0], row[1], row[2], row[3], opt_from_ms(row[4]), row[5], row[6], actions
        )

    def get_account(self, account_id: str) -> Account | None:
        row = self._one("SELECT account_id, name FROM accounts WHERE account_id = ?", (account_id,))
        return None if row is None else Account(row[0], row[1])

    def get_product(self, product_code: str) -> Product | None:
        row = self._one(_PRODUCT_SELECT + " WHERE product_code = ?", (product_code,))
        return None if row is None else _product(row)

    def list_products(self) -> list[Product]:
        rows = self._all(_PRODUCT_SELECT + " ORDER BY product_code")
        return [_product(row) for row in rows]

    def get_subscription_by_license(self, license_arn: str) -> Subscription | None:
        row = self._one(_SUBSCRIPTION_SELECT + " WHERE license_arn = ?", (license_arn,))
        return None if row is None else _subscription(row)

    def get_subscription_by_agreement(self, agreement_id: str) -> Subscription | None:
        row = self._one(_SUBSCRIPTION_SELECT + " WHERE agreement_id = ?", (agreement_id,))
        return None if row is None else _subscription(row)

    def find_subscriptions(
        self,
        product_code: str,
        *,
        customer_aws_account_id: str | None = None,
        customer_identifier: str | None = None,
    ) -> list[Subscription]:
        sql = _SUBSCRIPTION_SELECT + " WHERE product_code = ?"
        params: list[Any] = [product_code]
        if customer_aws_account_id is not None:
            sql += " AND customer_aws_account_id = ?"
            params.append(customer_aws_account_id)
        if customer_identifier is not None:
            sql += " AND customer_identifier = ?"
            params.append(customer_identifier)
        rows = self._all(sql + " ORDER BY created_at, license_arn", params)
        return [_subscription(row) for row in rows]

    def customer_identifier_of(self, customer_aws_account_id: str) -> str | None:
        row = self._one(
            "SELECT customer_identifier FROM subscriptions WHERE customer_aws_account_id = ? "
            "ORDER BY created_at LIMIT 1",
            (customer_aws_account_id,),
        )
        return None if row is None else str(row[0])

    def get_registration_token(self, token: str) -> RegistrationToken | None:
        row = self._one(
            "SELECT token, product_code, customer_aws_account_id, license_arn, issued_at, "
            "expires_at FROM registration_tokens WHERE token = ?",
            (token,),
        )
        if row is None:
            return None
        return RegistrationToken(row[0], row[1], row[2], row[3], from_ms(row[4]), from_ms(row[5]))

    def get_signing_key(self, product_code: str, version: int) -> SigningKey | None:
        row = self._one(
            "SELECT product_code, version, private_pem, public_pem, created_at FROM signing_keys "
            "WHERE product_code = ? AND version = ?",
            (product_code, version),
        )
        if row is None:
            return None
        return SigningKey(row[0], row[1], row[2], row[3], from_ms(row[4]))

    def latest_signing_key_version(self, product_code: str) -> int | None:
        row = self._one(
            "SELECT MAX(version) FROM signing_keys WHERE product_code = ?", (product_code,)
        )
        return None if row is None or row[0] is None else int(row[0])

    def find_client_token(self, account_id: str, client_token: str) -> ClientTokenEntry | None:
        row = self._one(
            "SELECT account_id, client_token, fingerprint, record_id, created_at "
            "FROM client_tokens WHERE account_id = ? AND client_token = ?",
            (account_id, client_token),
        )
        if row is None:
            return None
        return ClientTokenEntry(row[0], row[1], row[2], row[3], from_ms(row[4]))


class SqliteStore(_QueriesBase):
    def __init__(
        self, path: str | Path, *, busy_timeout_ms: int = 5000, synchronous: str = "NORMAL"
    ) -> None:
        self.path = str(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = synchronous
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        self._all_connections = [self._writer]
        self._connections_lock = threading.Lock()
        with _translate_errors():
            self._migrate()

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._connections_lock:
                self._all_connections.append(conn)
        return conn

    def _migrate(self) -> None:
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
            )
            applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in migrations_for("sqlite"):
                if migration.version in applied:
                    continue
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                    (migration.version, migration.name),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._all_connections:
                conn.close()
            self._all_connections.clear()

    # -- units of work -----------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        with self._write_lock, _translate_errors():
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteTransaction(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- reads outside a transaction ---------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        return self._reader()

    def iter_records(self, product_code: str | None = None) -> Iterator[MeteringRecord]:
        conn = self._connect()
        try:
            sql = f"SELECT {_RECORD_COLUMNS} FROM metering_records"
            params: tuple[Any, ...] = ()
            if product_code is not None:
                sql += " WHERE product_code = ?"
                params = (product_code,)
            with _translate_errors():
                for row in conn.execute(sql + " ORDER BY seq", params):
                    yield _record(row)
        finally:
            conn.close()

    def count_records(self, product_code: str | None = None) -> int:
        conn = self._reader()
        with _translate_errors():
            if product_code is None:
                row = conn.execute("SELECT COUNT(*) FROM metering_records").fetchone()
            else:
                row = conn.execute(
                    "SELECT COUNT(*) FROM metering_records WHERE product_code = ?",
                    (product_code,),
                ).fetchone()
        return int(row[0])


class SqliteTransaction(_QueriesBase):
    """Reads and writes on the writer connection, inside `BEGIN IMMEDIATE`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _db(self) -> sqlite3.Connection:
        return self._conn

    def claim_slot(self, record: MeteringRecord) -> MeteringRecord:
        s = record.slot
        q = record.quantity
        cursor = self._db().execute(
            f"INSERT INTO metering_records ({_RECORD_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (product_code, customer_aws_account_id, resource, license_key, "
            "dimension, hour) DO NOTHING",
            (
                record.record_id,
                s.product_code,
                s.customer_aws_account_id,
                s.resource,
                s.license_key,
                s.dimension,
                to_ms(s.hour),
                record.operation,
                to_ms(record.timestamp),
                q.micros,
                q.text,
                int(q.as_decimal),
                allocations_to_json(record.allocations),
                record.customer_identifier,
                record.license_arn,
                to_ms(record.received_at),
            ),
        )
        if cursor.rowcount == 1:
            return record
        row = self._one(
            f"SELECT {_RECORD_COLUMNS} FROM metering_records WHERE {_SLOT_WHERE}",
            (
                s.product_code,
                s.customer_aws_account_id,
                s.resource,
                s.license_key,
                s.dimension,
                to_ms(s.hour),
            ),
        )
        return _record(row)

    def claim_client_token(self, entry: ClientTokenEntry) -> ClientTokenEntry:
        cursor = self._db().execute(
            "INSERT INTO client_tokens (account_id, client_token, fingerprint, record_id, "
            "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, client_token) DO NOTHING",
            (
                entry.account_id,
                entry.client_token,
                entry.request_fingerprint,
                entry.record_id,
                to_ms(entry.created_at),
            ),
        )
        if cursor.rowcount == 1:
            return entry
        found = self.find_client_token(entry.account_id, entry.client_token)
        assert found is not None
        return found

    def upsert_account(self, account: Account) -> None:
        self._db().execute(
            "INSERT INTO accounts (account_id, name) VALUES (?, ?) "
            "ON CONFLICT (account_id) DO UPDATE SET name = excluded.name",
            (account.account_id, account.name),
        )

    def upsert_access_key(self, key: AccessKey) -> None:
        self._db().execute(
            "INSERT INTO access_keys (access_key_id, secret_access_key, account_id, "
            "session_token, expires_at, region, platform, actions) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (access_key_id) DO UPDATE SET "
            "secret_access_key = excluded.secret_access_key, account_id = excluded.account_id, "
            "session_token = excluded.session_token, expires_at = excluded.expires_at, "
            "region = excluded.region, platform = excluded.platform, actions = excluded.actions",
            (
                key.access_key_id,
                key.secret_access_key,
                key.account_id,
                key.session_token,
                opt_to_ms(key.expires_at),
                key.region,
                key.platform,
                None if key.actions is None else dump_json(sorted(key.actions)),
            ),
        )

    def upsert_product(self, product: Product) -> None:
        self._db().execute(
            "INSERT INTO products (product_code, seller_account_id, type, dimensions, "
            "fulfillment_url, concurrent_agreements) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (product_code) DO UPDATE SET "
            "seller_account_id = excluded.seller_account_id, type = excluded.type, "
            "dimensions = excluded.dimensions, fulfillment_url = excluded.fulfillment_url, "
            "concurrent_agreements = excluded.concurrent_agreements",
            (
                product.product_code,
                product.seller_account_id,
                product.type,
                dump_json(list(product.dimensions)),
                product.fulfillment_url,
                int(product.concurrent_agreements),
            ),
        )

    def upsert_subscription(self, subscription: Subscription) -> None:
        s = subscription
        self._db().execute(
            "INSERT INTO subscriptions (license_arn, agreement_id, product_code, "
            "customer_aws_account_id, customer_identifier, created_at, ends_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (license_arn) DO UPDATE SET "
            "agreement_id = excluded.agreement_id, product_code = excluded.product_code, "
            "customer_aws_account_id = excluded.customer_aws_account_id, "
            "customer_identifier = excluded.customer_identifier, ends_at = excluded.ends_at",
            (
                s.license_arn,
                s.agreement_id,
                s.product_code,
                s.customer_aws_account_id,
                s.customer_identifier,
                to_ms(s.created_at),
                opt_to_ms(s.ends_at),
            ),
        )

    def add_signing_key(self, key: SigningKey) -> bool:
        cursor = self._db().execute(
            "INSERT INTO signing_keys (product_code, version, private_pem, public_pem, "
            "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (product_code, version) DO NOTHING",
            (key.product_code, key.version, key.private_pem, key.public_pem, to_ms(key.created_at)),
        )
        return cursor.rowcount == 1

    def insert_registration_token(self, token: RegistrationToken) -> None:
        self._db().execute(
            "INSERT INTO registration_tokens (token, product_code, customer_aws_account_id, "
            "license_arn, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                token.token,
                token.product_code,
                token.customer_aws_account_id,
                token.license_arn,
                to_ms(token.issued_at),
                to_ms(token.expires_at),
            ),
        )


_PRODUCT_SELECT = (
    "SELECT product_code, seller_account_id, type, dimensions, fulfillment_url, "
    "concurrent_agreements FROM products"
)
_SUBSCRIPTION_SELECT = (
    "SELECT product_code, customer_aws_account_id, customer_identifier, license_arn, "
    "agreement_id, created_at, ends_at FROM subscriptions"
)


def _product(row: Any) -> Product:
    return Product(row[0], row[1], row[2], tuple(orjson.loads(row[3])), row[4], bool(row[5]))


def _subscription(row: Any) -> Subscription:
    return Subscription(
        row[0], row[1], row[2], row[3], row[4], from_ms(row[5]), opt_from_ms(row[6])
    )


def _record(row: Any) -> MeteringRecord:
    quantity = (
        Quantity.from_decimal_string(row[10]) if row[11] else Quantity.from_integer(int(row[10]))
    )
    return MeteringRecord(
        record_id=row[0],
        operation=row[7],
        slot=SlotKey(row[1], row[2], row[3], row[4], row[5], from_ms(row[6])),
        timestamp=from_ms(row[8]),
        quantity=quantity,
        allocations=allocations_from_json(row[12]),
        customer_identifier=row[13],
        license_arn=row[14],
        received_at=from_ms(row[15]),
    )


def _statements(sql: str) -> list[str]:
    # Our migrations keep "--" for comments only, never inside string literals.
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


@contextmanager
def _translate_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise StoreConflict(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(f"SQLite: {exc}") from exc
