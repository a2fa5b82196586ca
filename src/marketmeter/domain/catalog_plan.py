"""The subscriptions of a catalog file, worked out in memory: one read of everything they
may meet, then the same rules as one subscription at a time, then one upsert of what
changed — a file of 100,000 subscriptions costs a few statements, not 500,000.

The rules: a subscription is found by its license, else by its agreement, else as the
account's oldest subscription to the product; a new one takes the account's customer
identifier (from its oldest subscription to any product) or a new one; an identifier
belongs to one account per product; `status: cancelled` ends it now (or keeps an earlier
end), `active` reopens it.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from msgspec.structs import replace

from marketmeter.domain.errors import CatalogError
from marketmeter.domain.models import CatalogSubscription, Subscription
from marketmeter.domain.ports import Transaction


class SubscriptionPlan:
    def __init__(
        self, tx: Transaction, entries: Sequence[CatalogSubscription], now: datetime
    ) -> None:
        self._now = now
        products = tx.get_products({e.product_code for e in entries})
        for entry in entries:
            if entry.product_code not in products:
                raise CatalogError(f"subscription to unknown product {entry.product_code}")
        accounts = {e.customer_aws_account_id for e in entries}
        found = tx.related_subscriptions(
            accounts=accounts,
            identifiers={e.customer_identifier for e in entries if e.customer_identifier},
            license_arns={e.license_arn for e in entries if e.license_arn},
            agreement_ids={e.agreement_id for e in entries if e.agreement_id},
        )
        # The identifiers these accounts already have meet their holders on other products.
        taken = {s.customer_identifier for s in found if s.customer_aws_account_id in accounts}
        more = taken - {s.customer_identifier for s in found}
        if more:
            found = sorted(
                {
                    s.license_arn: s for s in [*found, *tx.related_subscriptions(identifiers=more)]
                }.values(),
                key=lambda s: (s.created_at, s.license_arn),
            )
        self._before = {s.license_arn: s for s in found}
        self._now_held = dict(self._before)  # license → the subscription as planned so far
        self._by_agreement = {s.agreement_id: s.license_arn for s in found}
        self._by_product_account: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._by_product_identifier: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._oldest_of_account: dict[str, str] = {}
        self.products = products
        self.licenses: list[str] = []
        """Each entry's subscription, by license ARN, in the order of the entries."""
        for s in found:  # oldest first
            self._index(s)
        for entry in entries:
            self.licenses.append(self._plan(entry))

    def changed(self) -> list[Subscription]:
        """The subscriptions to write: new or different from what is stored."""
        return [s for lic, s in self._now_held.items() if self._before.get(lic) != s]

    def _index(self, s: Subscription) -> None:
        account = s.customer_aws_account_id
        licenses = self._by_product_account[(s.product_code, account)]
        if s.license_arn not in licenses:
            licenses.append(s.license_arn)
        self._by_product_identifier[(s.product_code, s.customer_identifier)].add(s.license_arn)
        self._by_agreement[s.agreement_id] = s.license_arn
        self._oldest_of_account.setdefault(account, s.license_arn)

    def _existing(self, entry: CatalogSubscription) -> Subscription | None:
        if entry.license_arn is not None:
            return self._now_held.get(entry.license_arn)
        if entry.agreement_id is not None:
            license_arn = self._by_agreement.get(entry.agreement_id)
            held = None if license_arn is None else self._now_held[license_arn]
            return held if held is not None and held.agreement_id == entry.agreement_id else None
        licenses = self._by_product_account.get((entry.product_code, entry.customer_aws_account_id))
        return self._now_held[licenses[0]] if licenses else None

    def _plan(self, entry: CatalogSubscription) -> str:
        existing = self._existing(entry)
        if existing is None:
            oldest = self._oldest_of_account.get(entry.customer_aws_account_id)
            identifier = (
                entry.customer_identifier
                or (None if oldest is None else self._now_held[oldest].customer_identifier)
                or new_customer_identifier()
            )
            subscription = Subscription(
                product_code=entry.product_code,
                customer_aws_account_id=entry.customer_aws_account_id,
                customer_identifier=identifier,
                license_arn=entry.license_arn or new_license_arn(entry.customer_aws_account_id),
                agreement_id=entry.agreement_id or new_agreement_id(),
                created_at=self._now,
            )
        else:
            if (
                existing.product_code != entry.product_code
                or existing.customer_aws_account_id != entry.customer_aws_account_id
            ):
                raise CatalogError(
                    f"subscription {existing.license_arn} belongs to "
                    f"{existing.customer_aws_account_id} on {existing.product_code}"
                )
            subscription = replace(
                existing,
                customer_identifier=entry.customer_identifier or existing.customer_identifier,
                agreement_id=entry.agreement_id or existing.agreement_id,
            )
        key = (subscription.product_code, subscription.customer_identifier)
        for license_arn in self._by_product_identifier.get(key, ()):
            other = self._now_held[license_arn]
            if (
                other.customer_identifier == subscription.customer_identifier
                and other.customer_aws_account_id != subscription.customer_aws_account_id
            ):
                raise CatalogError(
                    f"customer identifier {subscription.customer_identifier!r} is account "
                    f"{other.customer_aws_account_id}'s on {subscription.product_code}: it "
                    f"cannot also be account {subscription.customer_aws_account_id}'s"
                )
        if entry.status == "cancelled":
            ended = subscription.ends_at is not None and subscription.ends_at <= self._now
            subscription = replace(
                subscription, ends_at=subscription.ends_at if ended else self._now
            )
        else:
            subscription = replace(subscription, ends_at=None)
        self._now_held[subscription.license_arn] = subscription
        self._index(subscription)
        return subscription.license_arn


class _RandomHex(threading.local):
    """Random hex digits from the operating system's source, read 64 KiB at a time: a
    catalog of 100,000 customers needs 300,000 identifiers, and one `os.urandom` call
    each cost a second."""

    def __init__(self) -> None:
        self._digits = ""
        self._at = 0
        self._pid = 0

    def take(self, n: int) -> str:
        # (a process made by fork starts a buffer of its own: no digits shared with its parent)
        if self._at + n > len(self._digits) or self._pid != os.getpid():
            self._digits, self._at, self._pid = os.urandom(32_768).hex(), 0, os.getpid()
        self._at += n
        return self._digits[self._at - n : self._at]


_random_hex = _RandomHex()


def new_customer_identifier() -> str:
    return _random_hex.take(11)  # 11 characters, as AWS's are


def new_license_arn(account_id: str) -> str:
    return f"arn:aws:license-manager::{account_id}:license:l-{_random_hex.take(32)}"


def new_agreement_id() -> str:
    return "agmt-" + _random_hex.take(26)  # 26 lowercase letters and digits, as AWS's are
