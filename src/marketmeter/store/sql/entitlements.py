"""Entitlements of contract subscriptions: kept by (license, dimension), read by
GetEntitlements' filters in (license, dimension) order, a page at a time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from marketmeter.domain.models import Entitlement, Subscription
from marketmeter.domain.ports import EntitlementQuery
from marketmeter.instants import to_ms
from marketmeter.store.codec import opt_from_ms, opt_to_ms
from marketmeter.store.sql.catalog import SUBSCRIPTION_COLUMNS, subscription_from_row
from marketmeter.store.sql.runner import Runner, any_of

_COLUMNS = "e.license_arn, e.dimension, e.value_type, e.value, e.expires_at"


class EntitlementReads:
    def _runner(self) -> Runner:
        raise NotImplementedError

    def entitlements_of(self, license_arn: str) -> list[Entitlement]:
        rows = self._runner().fetchall(
            f"SELECT {_COLUMNS} FROM entitlements e WHERE e.license_arn = ? ORDER BY e.dimension",
            (license_arn,),
        )
        return [_entitlement(row) for row in rows]

    def page_entitlements(self, query: EntitlementQuery) -> list[tuple[Subscription, Entitlement]]:
        run = self._runner()
        conditions = [
            "s.product_code = ?",
            "(e.expires_at IS NULL OR e.expires_at > ?)",
            "(s.ends_at IS NULL OR s.ends_at > ?)",  # an ended agreement entitles to nothing
        ]
        now = to_ms(query.now)
        params: list[Any] = [query.product_code, now, now]
        for column, values in (
            ("s.customer_identifier", query.identifiers),
            ("s.customer_aws_account_id", query.accounts),
            ("s.license_arn", query.license_arns),
            ("e.dimension", query.dimensions),
        ):
            if values:
                condition, param = any_of(run.dialect, column, values)
                conditions.append(condition)
                params.append(param)
        if query.after is not None:
            conditions.append("(e.license_arn > ? OR (e.license_arn = ? AND e.dimension > ?))")
            params.extend([query.after[0], query.after[0], query.after[1]])
        subscription_columns = ", ".join(f"s.{c}" for c in SUBSCRIPTION_COLUMNS)
        rows = run.fetchall(
            f"SELECT {subscription_columns}, {_COLUMNS} FROM entitlements e "
            "JOIN subscriptions s ON s.license_arn = e.license_arn "
            f"WHERE {' AND '.join(conditions)} ORDER BY e.license_arn, e.dimension LIMIT ?",
            [*params, query.limit],
        )
        width = len(SUBSCRIPTION_COLUMNS)
        return [(subscription_from_row(row[:width]), _entitlement(row[width:])) for row in rows]


class EntitlementWrites(EntitlementReads):
    def put_entitlements(
        self, license_arn: str, entitlements: Sequence[Entitlement], *, replace_all: bool
    ) -> None:
        run = self._runner()
        if replace_all:
            run.execute("DELETE FROM entitlements WHERE license_arn = ?", (license_arn,))
        for e in entitlements:
            run.execute(
                "INSERT INTO entitlements (license_arn, dimension, value_type, value, expires_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (license_arn, dimension) DO UPDATE SET "
                "value_type = excluded.value_type, value = excluded.value, "
                "expires_at = excluded.expires_at",
                (license_arn, e.dimension, e.type, e.value, opt_to_ms(e.expires_at)),
            )

    def remove_entitlement(self, license_arn: str, dimension: str) -> bool:
        return (
            self._runner().execute(
                "DELETE FROM entitlements WHERE license_arn = ? AND dimension = ?",
                (license_arn, dimension),
            )
            == 1
        )


def _entitlement(row: Any) -> Entitlement:
    return Entitlement(row[0], row[1], row[2], row[3], opt_from_ms(row[4]))
