"""The SQL both stores share: every query and how its rows become domain values.

Queries are written once, with `?` placeholders; a dialect's `Runner` executes them (the
PostgreSQL runner rewrites the placeholders). Both SQLite and PostgreSQL understand
`INSERT … ON CONFLICT … DO NOTHING`, which is how every claim is made: the unique key
decides, never a read-then-write in Python.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

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
from marketmeter.instants import from_ms, to_ms
from marketmeter.store.codec import (
    allocations_from_json,
    allocations_to_json,
    dump_json,
    opt_from_ms,
    opt_to_ms,
)
from marketmeter.store.migrations import migrations_for


class Runner(Protocol):
    """Executes one statement of this module on one connection."""

    def fetchone(self, sql: str, params: tuple[Any, ...] | list[Any]) -> Any: ...

    def fetchall(self, sql: str, params: tuple[Any, ...] | list[Any]) -> list[Any]: ...

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any]) -> int:
        """Run a write; the number of rows it changed."""
        ...


RECORD_COLUMNS = (
    "record_id, product_code, customer_aws_account_id, resource, license_key, dimension, "
    "hour, operation, timestamp, quantity_micros, quantity_text, quantity_as_decimal, "
    "allocations, customer_identifier, license_arn, received_at"
)
_SLOT_COLUMNS = "product_code, customer_aws_account_id, resource, license_key, dimension, hour"


@lru_cache(maxsize=64)
def _insert_records_sql(n: int) -> str:
    row = "(" + ", ".join("?" * 16) + ")"
    return (
        f"INSERT INTO metering_records ({RECORD_COLUMNS}) VALUES {', '.join([row] * n)} "
        f"ON CONFLICT ({_SLOT_COLUMNS}) DO NOTHING RETURNING record_id"
    )


@lru_cache(maxsize=64)
def _occupants_sql(n: int) -> str:
    keys = ", ".join(["(?, ?, ?, ?, ?, ?)"] * n)
    return (
        f"SELECT {RECORD_COLUMNS} FROM metering_records WHERE ({_SLOT_COLUMNS}) IN (VALUES {keys})"
    )


def _slot_params(slot: SlotKey) -> tuple[str, str, str, str, str, int]:
    return (
        slot.product_code,
        slot.customer_aws_account_id,
        slot.resource,
        slot.license_key,
        slot.dimension,
        to_ms(slot.hour),
    )


def _records_params(records: list[MeteringRecord]) -> list[Any]:
    """The insert's parameters, every record's 16 in a row. (This runs for every record of
    every batch: a batch shares a few distinct instants, converted once each.)"""
    instants = {i for r in records for i in (r.slot.hour, r.timestamp, r.received_at)}
    millis = {instant: to_ms(instant) for instant in instants}
    params: list[Any] = []
    extend = params.extend
    for r in records:
        s = r.slot
        q = r.quantity
        allocations = r.allocations
        extend(
            (
                r.record_id,
                s.product_code,
                s.customer_aws_account_id,
                s.resource,
                s.license_key,
                s.dimension,
                millis[s.hour],
                r.operation,
                millis[r.timestamp],
                q.micros,
                q.text,
                int(q.as_decimal),
                None if allocations is None else allocations_to_json(allocations),
                r.customer_identifier,
                r.license_arn,
                millis[r.received_at],
            )
        )
    return params


class SqlReader:
    """The `Reader` methods, run by `self._runner()`."""

    def _runner(self) -> Runner:
        raise NotImplementedError

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self._runner().fetchone(sql, params)

    def _all(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        return self._runner().fetchall(sql, params)

    def count_records(self, product_code: str | None = None) -> int:
        sql, params = count_query(product_code)
        return int(self._one(sql, params)[0])

    def catalog_version(self) -> int:
        return int(self._one("SELECT version FROM catalog_version WHERE id = 1", ())[0])

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


class SqlTransaction(SqlReader):
    """Reads and writes on one connection, inside the transaction the store opened."""

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    def _runner(self) -> Runner:
        return self._run

    def _write(self, sql: str, params: tuple[Any, ...] | list[Any]) -> int:
        return self._run.execute(sql, params)

    def _catalog_changed(self) -> None:
        """Every catalog write bumps the version that server processes' caches check."""
        self._write("UPDATE catalog_version SET version = version + 1 WHERE id = 1", ())

    def claim_slot(self, record: MeteringRecord) -> MeteringRecord:
        return self.claim_slots([record])[0]

    def claim_slots(self, records: list[MeteringRecord]) -> list[MeteringRecord]:
        """One statement stores every record whose slot is free (in list order, so of two
        records for one slot the first wins); one more reads the occupants of the rest."""
        if not records:
            return []
        params = _records_params(records)
        inserted = {row[0] for row in self._run.fetchall(_insert_records_sql(len(records)), params)}
        if len(inserted) == len(records):
            return list(records)
        taken = [r for r in records if r.record_id not in inserted]
        keys: list[Any] = []
        for record in taken:
            keys.extend(_slot_params(record.slot))
        occupants = {
            _slot_params(found.slot): found
            for found in map(record_from_row, self._run.fetchall(_occupants_sql(len(taken)), keys))
        }
        return [r if r.record_id in inserted else occupants[_slot_params(r.slot)] for r in records]

    def claim_client_token(self, entry: ClientTokenEntry) -> ClientTokenEntry:
        changed = self._write(
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
        if changed == 1:
            return entry
        found = self.find_client_token(entry.account_id, entry.client_token)
        assert found is not None
        return found

    def upsert_account(self, account: Account) -> None:
        self._catalog_changed()
        self._write(
            "INSERT INTO accounts (account_id, name) VALUES (?, ?) "
            "ON CONFLICT (account_id) DO UPDATE SET name = excluded.name",
            (account.account_id, account.name),
        )

    def upsert_access_key(self, key: AccessKey) -> None:
        self._catalog_changed()
        self._write(
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
        self._catalog_changed()
        self._write(
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
        self._catalog_changed()
        s = subscription
        self._write(
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
        self._catalog_changed()
        changed = self._write(
            "INSERT INTO signing_keys (product_code, version, private_pem, public_pem, "
            "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (product_code, version) DO NOTHING",
            (key.product_code, key.version, key.private_pem, key.public_pem, to_ms(key.created_at)),
        )
        return changed == 1

    def insert_registration_token(self, token: RegistrationToken) -> None:
        self._write(
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


def record_from_row(row: Any) -> MeteringRecord:
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


def records_query(product_code: str | None) -> tuple[str, tuple[Any, ...]]:
    """Every stored record (of one product), in the order stored."""
    if product_code is None:
        return f"SELECT {RECORD_COLUMNS} FROM metering_records ORDER BY seq", ()
    return (
        f"SELECT {RECORD_COLUMNS} FROM metering_records WHERE product_code = ? ORDER BY seq",
        (product_code,),
    )


def count_query(product_code: str | None) -> tuple[str, tuple[Any, ...]]:
    if product_code is None:
        return "SELECT COUNT(*) FROM metering_records", ()
    return "SELECT COUNT(*) FROM metering_records WHERE product_code = ?", (product_code,)


def migrate(runner: Runner, dialect: str) -> None:
    """Apply the dialect's migrations not applied yet, in order, inside the caller's
    transaction (which holds the lock that keeps other processes from doing the same)."""
    runner.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        (),
    )
    applied = {row[0] for row in runner.fetchall("SELECT version FROM schema_migrations", ())}
    for migration in migrations_for(dialect):
        if migration.version in applied:
            continue
        for statement in statements(migration.sql):
            runner.execute(statement, ())
        runner.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
            (migration.version, migration.name),
        )


def statements(sql: str) -> list[str]:
    """A migration file's statements. Migrations use "--" for comments only, never inside
    string literals, and ";" only between statements."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
