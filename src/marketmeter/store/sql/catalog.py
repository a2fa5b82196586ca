"""The catalog — accounts, access keys, products, subscriptions, signing keys — and
registration tokens: reads, and upserts that note what they changed (`CatalogChange`) for
the caches of every process.

Upserts take many rows at once: on SQLite one statement per `CHUNK` rows, so a catalog of
100,000 subscriptions is 20 statements, not 100,000; on PostgreSQL one `COPY` of them all
and one statement (`Runner.select_rows`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import msgspec
import orjson

from marketmeter.domain.models import (
    AccessKey,
    Account,
    Price,
    Product,
    RegistrationToken,
    SigningKey,
    Subscription,
)
from marketmeter.domain.ports import CatalogChange, CustomerSubscriptions
from marketmeter.instants import from_ms, to_ms
from marketmeter.store import secrets
from marketmeter.store.codec import dump_json, opt_from_ms, opt_to_ms
from marketmeter.store.sql.runner import Runner, any_of
from marketmeter.store.sql.usage import FOLD_LOCK

CHUNK = 5_000
"""Rows per upsert statement on SQLite."""

_PRODUCT_SELECT = (
    "SELECT product_code, seller_account_id, type, dimensions, fulfillment_url, "
    "concurrent_agreements, pricing, prices FROM products"
)
SUBSCRIPTION_COLUMNS = (
    "product_code",
    "customer_aws_account_id",
    "customer_identifier",
    "license_arn",
    "agreement_id",
    "created_at",
    "ends_at",
    "unsubscribed_at",
    "free_trial",
    "offer_id",
)
_SUBSCRIPTION_SELECT = f"SELECT {', '.join(SUBSCRIPTION_COLUMNS)} FROM subscriptions"
_OLDEST_FIRST = " ORDER BY created_at, license_arn"


class CatalogReads:
    """Catalog reads, run by `self._runner()`."""

    def _runner(self) -> Runner:
        raise NotImplementedError

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self._runner().fetchone(sql, params)

    def _all(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        return self._runner().fetchall(sql, params)

    def catalog_version(self) -> int:
        return int(self._one("SELECT version FROM catalog_version WHERE id = 1", ())[0])

    def get_access_key(self, access_key_id: str) -> AccessKey | None:
        row = self._one(
            "SELECT access_key_id, secret_access_key, account_id, session_token, expires_at, "
            "region, platform, actions FROM access_keys WHERE access_key_id = ?",
            (access_key_id,),
        )
        return None if row is None else _access_key(row)

    def list_accounts(self) -> list[Account]:
        return [
            Account(r[0], r[1])
            for r in self._all("SELECT account_id, name FROM accounts ORDER BY account_id")
        ]

    def access_keys_of(self, account_id: str | None = None) -> list[AccessKey]:
        where, params = ("", ()) if account_id is None else (" WHERE account_id = ?", (account_id,))
        rows = self._all(
            "SELECT access_key_id, secret_access_key, account_id, session_token, expires_at, "
            f"region, platform, actions FROM access_keys{where} ORDER BY access_key_id",
            params,
        )
        return [_access_key(row) for row in rows]

    def list_products(self) -> list[Product]:
        return [_product(row) for row in self._all(f"{_PRODUCT_SELECT} ORDER BY product_code")]

    def get_account(self, account_id: str) -> Account | None:
        row = self._one("SELECT account_id, name FROM accounts WHERE account_id = ?", (account_id,))
        return None if row is None else Account(row[0], row[1])

    def get_product(self, product_code: str) -> Product | None:
        row = self._one(_PRODUCT_SELECT + " WHERE product_code = ?", (product_code,))
        return None if row is None else _product(row)

    def get_products(self, product_codes: Collection[str]) -> dict[str, Product]:
        if not product_codes:
            return {}
        where, param = any_of(self._runner().dialect, "product_code", product_codes)
        return {
            row[0]: _product(row) for row in self._all(f"{_PRODUCT_SELECT} WHERE {where}", [param])
        }

    def get_subscription_by_license(self, license_arn: str) -> Subscription | None:
        row = self._one(_SUBSCRIPTION_SELECT + " WHERE license_arn = ?", (license_arn,))
        return None if row is None else subscription_from_row(row)

    def get_subscription_by_agreement(self, agreement_id: str) -> Subscription | None:
        row = self._one(_SUBSCRIPTION_SELECT + " WHERE agreement_id = ?", (agreement_id,))
        return None if row is None else subscription_from_row(row)

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
        return [subscription_from_row(row) for row in self._all(sql + _OLDEST_FIRST, params)]

    def subscriptions_of_customers(
        self,
        product_code: str,
        *,
        accounts: Collection[str] = (),
        identifiers: Collection[str] = (),
    ) -> CustomerSubscriptions:
        by_account: dict[str, list[Subscription]] = {a: [] for a in accounts}
        by_identifier: dict[str, list[Subscription]] = {i: [] for i in identifiers}
        if by_account or by_identifier:
            dialect = self._runner().dialect
            account_in, account_param = any_of(dialect, "customer_aws_account_id", by_account)
            identifier_in, identifier_param = any_of(dialect, "customer_identifier", by_identifier)
            rows = self._all(
                f"{_SUBSCRIPTION_SELECT} WHERE product_code = ? AND "
                f"({account_in} OR {identifier_in}){_OLDEST_FIRST}",
                [product_code, account_param, identifier_param],
            )
            for row in rows:
                s = subscription_from_row(row)
                if s.customer_aws_account_id in by_account:
                    by_account[s.customer_aws_account_id].append(s)
                if s.customer_identifier in by_identifier:
                    by_identifier[s.customer_identifier].append(s)
        return CustomerSubscriptions(
            {k: tuple(v) for k, v in by_account.items()},
            {k: tuple(v) for k, v in by_identifier.items()},
        )

    def count_subscriptions(self, product_code: str) -> int:
        row = self._one(
            "SELECT COUNT(*) FROM subscriptions WHERE product_code = ?", (product_code,)
        )
        return int(row[0])

    def product_subscriptions(self, product_code: str) -> list[Subscription]:
        rows = self._all(
            _SUBSCRIPTION_SELECT + " WHERE product_code = ?" + _OLDEST_FIRST, [product_code]
        )
        return [subscription_from_row(row) for row in rows]

    def related_subscriptions(
        self,
        *,
        accounts: Collection[str] = (),
        identifiers: Collection[str] = (),
        license_arns: Collection[str] = (),
        agreement_ids: Collection[str] = (),
    ) -> list[Subscription]:
        dialect = self._runner().dialect
        conditions, params = [], []
        for column, values in (
            ("customer_aws_account_id", accounts),
            ("customer_identifier", identifiers),
            ("license_arn", license_arns),
            ("agreement_id", agreement_ids),
        ):
            if values:
                condition, param = any_of(dialect, column, values)
                conditions.append(condition)
                params.append(param)
        if not conditions:
            return []
        rows = self._all(
            f"{_SUBSCRIPTION_SELECT} WHERE {' OR '.join(conditions)}{_OLDEST_FIRST}", params
        )
        return [subscription_from_row(row) for row in rows]

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
        private = secrets.configured().open(row[2], _signing_place(row[0], row[1]))
        return SigningKey(row[0], row[1], private, row[3], from_ms(row[4]))

    def latest_signing_key_version(self, product_code: str) -> int | None:
        row = self._one(
            "SELECT MAX(version) FROM signing_keys WHERE product_code = ?", (product_code,)
        )
        return None if row is None or row[0] is None else int(row[0])


_CLEARED = (
    "delivery_attempts",
    "deliveries",
    "webhooks",
    "event_targets",
    "entitlements",
    "client_tokens",
    "usage_pending",
    "metering_records",
    "registration_tokens",
    "subscriptions",
    "products",
    "access_keys",
    "accounts",
)
"""Child tables before their parents."""


class CatalogWrites(CatalogReads):
    """Catalog writes inside a transaction. Each notes what it changed in `changes`, which
    the store publishes with the transaction (`store.sql.changes`)."""

    changes: list[CatalogChange]

    def _upsert(self, table: _Table, rows: Sequence[tuple[Any, ...]]) -> None:
        run = self._runner()
        chunk = CHUNK if run.dialect == "sqlite" else max(len(rows), 1)
        for start in range(0, len(rows), chunk):
            source, params = run.select_rows(table.types, rows[start : start + chunk])
            run.execute(table.upsert(source), params)

    def clear_marketplace(self) -> None:
        run = self._runner()
        if run.dialect == "postgresql":
            # After a fold running now: one that read records about to be deleted must not
            # add their sums after the rollups are emptied.
            run.execute("SELECT pg_advisory_xact_lock(?)", (FOLD_LOCK,))
        for table in _CLEARED:
            run.execute(f"DELETE FROM {table}", ())  # the names of our own tables
        if run.dialect == "sqlite":
            # The records' seq starts again at 1: the rollups' file (store.sqlite_rollups)
            # is of the records before, and is emptied before anything reads it again.
            run.execute("UPDATE usage_generation SET generation = lower(hex(randomblob(16)))", ())
        else:
            for table in ("usage_by_hour", "usage_by_day"):
                run.execute(f"DELETE FROM {table}", ())
        run.execute("DELETE FROM signing_keys WHERE version > 1", ())
        run.execute(
            "UPDATE test_controls SET clock_offset_ms = 0, faults = NULL, internal_errors = 0 "
            "WHERE id = 1",
            (),
        )
        self.changes.append(CatalogChange("all"))

    def upsert_accounts(self, accounts: Sequence[Account]) -> None:
        latest = {a.account_id: a for a in accounts}  # one statement may touch a row once
        self._upsert(_ACCOUNTS, [(a.account_id, a.name) for a in latest.values()])
        self.changes.extend(CatalogChange("account", a) for a in latest)

    def upsert_access_keys(self, keys: Sequence[AccessKey]) -> None:
        latest = {k.access_key_id: k for k in keys}
        sealed = secrets.configured()
        self._upsert(
            _ACCESS_KEYS,
            [
                (
                    k.access_key_id,
                    sealed.seal(k.secret_access_key, _secret_place(k.access_key_id)),
                    k.account_id,
                    k.session_token,
                    opt_to_ms(k.expires_at),
                    k.region,
                    k.platform,
                    None if k.actions is None else dump_json(sorted(k.actions)),
                )
                for k in latest.values()
            ],
        )
        self.changes.extend(CatalogChange("access_key", k) for k in latest)

    def upsert_products(self, products: Sequence[Product]) -> None:
        latest = {p.product_code: p for p in products}
        self._upsert(
            _PRODUCTS,
            [
                (
                    p.product_code,
                    p.seller_account_id,
                    p.type,
                    dump_json(list(p.dimensions)),
                    p.fulfillment_url,
                    int(p.concurrent_agreements),
                    p.pricing,
                    _prices.encode(p.prices).decode() if p.prices else None,
                )
                for p in latest.values()
            ],
        )
        self.changes.extend(CatalogChange("product", p) for p in latest)

    def upsert_subscriptions(self, subscriptions: Sequence[Subscription]) -> None:
        latest = {s.license_arn: s for s in subscriptions}
        self._upsert(
            _SUBSCRIPTIONS,
            [
                (
                    s.license_arn,
                    s.agreement_id,
                    s.product_code,
                    s.customer_aws_account_id,
                    s.customer_identifier,
                    to_ms(s.created_at),
                    opt_to_ms(s.ends_at),
                    opt_to_ms(s.unsubscribed_at),
                    int(s.free_trial),
                    s.offer_id,
                )
                for s in latest.values()
            ],
        )
        self.changes.extend(CatalogChange.of_subscription(s) for s in latest.values())

    def upsert_account(self, account: Account) -> None:
        self.upsert_accounts([account])

    def reseal_secrets(self) -> int:
        """Every stored secret that is plain, or under another key than the current one,
        encrypted under the current key (`marketmeter secrets rotate`); how many."""
        run = self._runner()
        box = secrets.configured()
        done = 0
        for key_id_, stored in run.fetchall(
            "SELECT access_key_id, secret_access_key FROM access_keys", ()
        ):
            if box.needs_sealing(stored):
                where = _secret_place(key_id_)
                run.execute(
                    "UPDATE access_keys SET secret_access_key = ? WHERE access_key_id = ?",
                    (box.seal(box.open(stored, where), where), key_id_),
                )
                done += 1
        for product, version, stored in run.fetchall(
            "SELECT product_code, version, private_pem FROM signing_keys", ()
        ):
            if box.needs_sealing(stored):
                where = _signing_place(product, version)
                run.execute(
                    "UPDATE signing_keys SET private_pem = ? "
                    "WHERE product_code = ? AND version = ?",
                    (box.seal(box.open(stored, where), where), product, version),
                )
                done += 1
        for (stored,) in run.fetchall("SELECT private_pem FROM sns_keys", ()):
            if box.needs_sealing(stored):
                where = secrets.place("sns_keys", "private_pem", "1")
                run.execute(
                    "UPDATE sns_keys SET private_pem = ? WHERE id = 1",
                    (box.seal(box.open(stored, where), where),),
                )
                done += 1
        return done

    def upsert_access_key(self, key: AccessKey) -> None:
        self.upsert_access_keys([key])

    def upsert_product(self, product: Product) -> None:
        self.upsert_products([product])

    def upsert_subscription(self, subscription: Subscription) -> None:
        self.upsert_subscriptions([subscription])

    def add_signing_key(self, key: SigningKey) -> bool:
        changed = self._runner().execute(
            "INSERT INTO signing_keys (product_code, version, private_pem, public_pem, "
            "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (product_code, version) DO NOTHING",
            (
                key.product_code,
                key.version,
                secrets.configured().seal(
                    key.private_pem, _signing_place(key.product_code, key.version)
                ),
                key.public_pem,
                to_ms(key.created_at),
            ),
        )
        if changed == 1:
            self.changes.append(CatalogChange("product", key.product_code))
        return changed == 1

    def insert_registration_token(self, token: RegistrationToken) -> None:
        self._runner().execute(
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


class _Table(msgspec.Struct, frozen=True):
    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]  # PostgreSQL's, for the arrays of `rows_select`
    key: str

    def upsert(self, source: str) -> str:
        updates = ", ".join(
            f"{c} = excluded.{c}" for c in self.columns if c not in (self.key, "created_at")
        )
        return (
            f"INSERT INTO {self.name} ({', '.join(self.columns)}) {source} "
            f"ON CONFLICT ({self.key}) DO UPDATE SET {updates}"
        )


_ACCOUNTS = _Table("accounts", ("account_id", "name"), ("text", "text"), "account_id")
_ACCESS_KEYS = _Table(
    "access_keys",
    (
        "access_key_id",
        "secret_access_key",
        "account_id",
        "session_token",
        "expires_at",
        "region",
        "platform",
        "actions",
    ),
    ("text", "text", "text", "text", "bigint", "text", "text", "text"),
    "access_key_id",
)
_PRODUCTS = _Table(
    "products",
    (
        "product_code",
        "seller_account_id",
        "type",
        "dimensions",
        "fulfillment_url",
        "concurrent_agreements",
        "pricing",
        "prices",
    ),
    ("text", "text", "text", "text", "text", "smallint", "text", "text"),
    "product_code",
)
_SUBSCRIPTIONS = _Table(
    "subscriptions",
    (
        "license_arn",
        "agreement_id",
        "product_code",
        "customer_aws_account_id",
        "customer_identifier",
        "created_at",
        "ends_at",
        "unsubscribed_at",
        "free_trial",
        "offer_id",
    ),
    ("text", "text", "text", "text", "text", "bigint", "bigint", "bigint", "smallint", "text"),
    "license_arn",
)


def _access_key(row: Any) -> AccessKey:
    actions = None if row[7] is None else frozenset(orjson.loads(row[7]))
    secret = secrets.configured().open(row[1], _secret_place(row[0]))
    return AccessKey(row[0], secret, row[2], row[3], opt_from_ms(row[4]), row[5], row[6], actions)


def _secret_place(access_key_id: str) -> str:
    return secrets.place("access_keys", "secret_access_key", access_key_id)


def _signing_place(product_code: str, version: int) -> str:
    return secrets.place("signing_keys", "private_pem", f"{product_code}/{version}")


_prices = msgspec.json.Encoder()
_prices_of = msgspec.json.Decoder(dict[str, Price])


def _product(row: Any) -> Product:
    prices = {} if row[7] is None else _prices_of.decode(row[7])
    return Product(
        row[0], row[1], row[2], tuple(orjson.loads(row[3])), row[4], bool(row[5]), row[6], prices
    )


def subscription_from_row(row: Any) -> Subscription:
    return Subscription(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        from_ms(row[5]),
        opt_from_ms(row[6]),
        opt_from_ms(row[7]),
        bool(row[8]),
        row[9],
    )
