"""The store interface the domain is written against (its ports).

`Reader` answers questions; `Transaction` adds writes, all committed together or not at
all; `Store` hands out transactions and reads outside them, and watches the catalog for
changes (`CatalogWatch`). Implementations: `marketmeter.store.sqlite.SqliteStore` and
`marketmeter.store.postgres.PostgresStore`, both on the shared SQL of `store.sql`; a server
wraps either in `store.cache.CachedStore`. Imports nothing of the store.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

import msgspec

from marketmeter.domain.controls import TestControls
from marketmeter.domain.models import (
    AccessKey,
    Account,
    ClientTokenEntry,
    Entitlement,
    MeteringRecord,
    Product,
    RegistrationToken,
    SigningKey,
    Subscription,
)
from marketmeter.domain.outbox import Attempt, Delivery
from marketmeter.domain.targets import EventTarget, Webhook

T = TypeVar("T")

SubscriptionsByCustomer = Mapping[str, tuple[Subscription, ...]]


class CustomerSubscriptions(msgspec.Struct, frozen=True, gc=False):
    """A product's subscriptions of some customers: every account and identifier asked for
    is a key (an empty tuple when it has none); each tuple oldest first."""

    by_account: SubscriptionsByCustomer
    by_identifier: SubscriptionsByCustomer


class EntitlementQuery(msgspec.Struct, frozen=True, gc=False):
    """GetEntitlements' filters: ORed within one, ANDed across; empty means any."""

    product_code: str
    now: datetime
    identifiers: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    license_arns: tuple[str, ...] = ()
    dimensions: tuple[str, ...] = ()
    after: tuple[str, str] | None = None
    """(license ARN, dimension) of the last entitlement of the page before."""
    limit: int = 25


class CatalogChange(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What a committed transaction changed in the catalog, for the caches of every process.

    `kind` "all" means anything may have changed; "account", "access_key" and "product"
    name the changed row by `id` (a product's signing keys count as the product); a
    "subscription" change carries the subscription's identity as it is now. "controls":
    the test controls changed (the clock's offset, the faults).
    """

    kind: Literal["all", "account", "access_key", "product", "subscription", "controls"]
    id: str = ""
    product_code: str = ""
    customer_aws_account_id: str = ""
    customer_identifier: str = ""
    license_arn: str = ""
    agreement_id: str = ""

    @classmethod
    def of_subscription(cls, s: Subscription) -> CatalogChange:
        return cls(
            "subscription",
            "",
            s.product_code,
            s.customer_aws_account_id,
            s.customer_identifier,
            s.license_arn,
            s.agreement_id,
        )


class CatalogWatch(Protocol):
    """Catalog changes committed by any process, in commit order, for one cache."""

    def changed(self) -> bool:
        """Whether changes may be waiting: cheap, never a database round trip."""
        ...

    def take(self) -> list[CatalogChange] | None:
        """The changes committed since the last `take`, oldest first; None when they
        cannot be known (a lost connection, a log pruned meanwhile): assume everything
        changed."""
        ...

    def confirm(self) -> None:
        """Learn the latest committed version now, even at the cost of a round trip — for
        a test server, whose every request must see every change committed before it."""
        ...

    def close(self) -> None: ...


class StoreUnavailable(Exception):
    """The database could not be reached or could not complete the work (retryable)."""


class StoreConflict(Exception):
    """Data the database refuses: a uniqueness or reference rule of the schema broken, or a
    value it cannot hold (a caller's mistake, not a fault)."""


UsageSource = Literal["hours", "days", "records"]


class UsageSlice(msgspec.Struct, frozen=True, gc=False):
    """A question to the usage rollups: a product's usage in [start, end), summed per
    dimension and, on request, per hour or day, customer and tag set.

    Sources: "hours" (every customer's usage per hour: no customers), "days" (each
    customer's usage per day: whole days of one month, no hours), "records" (the records
    themselves: any whole hours, everything)."""

    product_code: str
    start: datetime
    end: datetime
    source: UsageSource
    per_hour: bool = False
    """One sum per hour ("hours", "records")."""
    by_customer: bool = False
    by_tags: bool = False
    per_day: bool = False
    """One sum per day ("days")."""


class UsageSum(msgspec.Struct, frozen=True, gc=False):
    at: datetime | None
    """The hour or the day, when asked per hour or per day."""
    customer_identifier: str | None
    customer_aws_account_id: str | None
    """The customer, when asked by customer (the identifier None when it has none)."""
    dimension: str
    tags: str
    """The tag set (`domain.usage.tag_set_key`) when asked by tags ("" untagged), else ""."""
    micros: int
    count: int
    """Records; when asked by tags, allocations (an untagged record counts one)."""


class RecordFilter(msgspec.Struct, frozen=True, gc=False):
    """Which stored records: each field that is set must match (all of them: AND)."""

    product_code: str | None = None
    customer: str | None = None
    """A CustomerIdentifier or an AWS account ID."""
    license_arn: str | None = None
    dimension: str | None = None
    operation: str | None = None
    start: datetime | None = None
    """Usage (the record's timestamp) from this time on (inclusive)…"""
    end: datetime | None = None
    """…until this time (exclusive)."""
    received_from: datetime | None = None
    received_until: datetime | None = None
    """Received in [received_from, received_until)."""


class StoredRecordRow(msgspec.Struct, frozen=True, gc=False):
    seq: int
    """The order stored: increasing; a page's cursor."""
    record: MeteringRecord


class Reader(Protocol):
    def catalog_version(self) -> int:
        """A number that changes whenever anything of the catalog changes."""
        ...

    def get_access_key(self, access_key_id: str) -> AccessKey | None: ...

    def get_account(self, account_id: str) -> Account | None: ...

    def get_product(self, product_code: str) -> Product | None: ...

    def get_subscription_by_license(self, license_arn: str) -> Subscription | None: ...

    def get_subscription_by_agreement(self, agreement_id: str) -> Subscription | None: ...

    def find_subscriptions(
        self,
        product_code: str,
        *,
        customer_aws_account_id: str | None = None,
        customer_identifier: str | None = None,
    ) -> list[Subscription]:
        """The product's subscriptions of one customer, oldest first."""
        ...

    def subscriptions_of_customers(
        self,
        product_code: str,
        *,
        accounts: Collection[str] = (),
        identifiers: Collection[str] = (),
    ) -> CustomerSubscriptions:
        """`find_subscriptions` for many customers at once, in one read."""
        ...

    def count_subscriptions(self, product_code: str) -> int: ...

    def product_subscriptions(self, product_code: str) -> list[Subscription]:
        """Every subscription of the product, oldest first."""
        ...

    def related_subscriptions(
        self,
        *,
        accounts: Collection[str] = (),
        identifiers: Collection[str] = (),
        license_arns: Collection[str] = (),
        agreement_ids: Collection[str] = (),
    ) -> list[Subscription]:
        """Every subscription (to any product) of one of the accounts, or with one of the
        customer identifiers, licenses or agreements, oldest first: what a catalog file's
        subscriptions may meet, in one read."""
        ...

    def get_products(self, product_codes: Collection[str]) -> dict[str, Product]: ...

    def customer_identifier_of(self, customer_aws_account_id: str) -> str | None:
        """The CustomerIdentifier already given to this buyer account, if any."""
        ...

    def get_registration_token(self, token: str) -> RegistrationToken | None: ...

    def get_signing_key(self, product_code: str, version: int) -> SigningKey | None: ...

    def latest_signing_key_version(self, product_code: str) -> int | None: ...

    def find_client_token(self, account_id: str, client_token: str) -> ClientTokenEntry | None: ...

    # -- entitlements, notification targets, the outbox, test controls --------------------

    def entitlements_of(self, license_arn: str) -> list[Entitlement]: ...

    def page_entitlements(self, query: EntitlementQuery) -> list[tuple[Subscription, Entitlement]]:
        """Current entitlements matching the query, ordered by (license ARN, dimension),
        after `query.after`, at most `query.limit`."""
        ...

    def list_webhooks(self, product_code: str | None = None) -> list[Webhook]: ...

    def get_webhook(self, webhook_id: str) -> Webhook | None: ...

    def list_event_targets(self, product_code: str | None = None) -> list[EventTarget]:
        """With a product: the targets of that product and those of every product."""
        ...

    def list_deliveries(
        self, product_code: str | None = None, *, failed_only: bool = False, limit: int = 1000
    ) -> list[Delivery]:
        """Newest first."""
        ...

    def attempts_of(self, delivery_ids: Collection[str]) -> dict[str, list[Attempt]]: ...

    def get_delivery(self, delivery_id: str) -> Delivery | None: ...

    def get_sns_key(self) -> tuple[str, str] | None:
        """(private key PEM, certificate PEM) that sign SNS messages, once made."""
        ...

    def test_controls(self) -> TestControls: ...

    def usage_sums(self, query: UsageSlice) -> list[UsageSum]:
        """The sums the slice asks for, in no particular order."""
        ...

    def page_records(
        self, where: RecordFilter, *, after: int = 0, limit: int = 100
    ) -> list[StoredRecordRow]:
        """Up to `limit` records the filter admits, stored after `after` (a `seq`), in the
        order stored."""
        ...

    def get_record(self, record_id: str) -> MeteringRecord | None: ...

    def received_per_minute(
        self, start: datetime, end: datetime, newest: int
    ) -> tuple[dict[datetime, int], bool]:
        """How many of the `newest` records stored were received in each minute of
        [start, end) (by the minute's start; minutes without any are absent), and whether
        that is all of the range's (False: older records of the range were not read)."""
        ...

    def list_accounts(self) -> list[Account]: ...

    def access_keys_of(self, account_id: str | None = None) -> list[AccessKey]:
        """The account's access keys (every account's when None), by key id."""
        ...

    def list_products(self) -> list[Product]: ...

    def admin_token_hash(self) -> str | None: ...

    def count_pending_deliveries(self) -> int:
        """Notifications not delivered yet and not given up: the outbox's backlog."""
        ...

    def pending_migrations(self) -> list[str]:
        """The schema migrations this build knows that the database has not applied (none
        once this build has opened it: opening migrates it); `StoreUnavailable` when the
        database cannot be reached."""
        ...


class FirstClaim(NamedTuple):
    """The claim a unit of work makes before anything else: `tx.claim_slots(records)`, or
    with a `token`, `tx.claim_slot_and_token(records[0], token)` (the same objects)."""

    records: list[MeteringRecord]
    token: ClientTokenEntry | None = None


class Claiming:
    """A unit of work whose first claim is known before it runs. A store may send that
    claim ahead, with other units' (PostgreSQL sends a group's in one round trip), and
    answer the unit's call from it."""

    __slots__ = ("_run", "first_claim")

    def __init__(self, first_claim: FirstClaim | None, run: Callable[[Transaction], Any]) -> None:
        self.first_claim = first_claim
        self._run = run

    def __call__(self, tx: Transaction) -> Any:
        return self._run(tx)


class ClaimSlots(Claiming):
    """A unit that only claims `records`' slots, the occupants its result: BatchMeterUsage's."""

    __slots__ = ()

    def __init__(self, records: list[MeteringRecord]) -> None:
        super().__init__(FirstClaim(records), lambda tx: tx.claim_slots(records))


class Transaction(Reader, Protocol):
    def claim_slot(self, record: MeteringRecord) -> MeteringRecord:
        """Store `record` unless its slot is taken; return the slot's occupant.

        The occupant is `record` itself when it was stored, or the record stored earlier.
        """
        ...

    def claim_slots(self, records: list[MeteringRecord]) -> list[MeteringRecord]:
        """`claim_slot` for many records at once, in list order; the occupants, in order."""
        ...

    def claim_client_token(self, entry: ClientTokenEntry) -> ClientTokenEntry:
        """Store `entry` unless the (account, token) pair is taken; return the occupant."""
        ...

    def claim_slot_and_token(
        self, record: MeteringRecord, entry: ClientTokenEntry
    ) -> tuple[MeteringRecord, bool]:
        """`claim_slot(record)`, and — only if `record` was stored — `entry` too, unless its
        (account, token) pair is taken: the slot's occupant, and whether `entry` was
        stored. (One statement where the database allows: MeterUsage's usual request.)"""
        ...

    def reseal_secrets(self) -> int:
        """Every stored secret (secret access keys, signing keys, the SNS key) encrypted
        under the store's current key, if it was not already; how many were."""
        ...

    def clear_marketplace(self) -> None:
        """Delete everything but the schema, the first signing key of each product and the
        SNS key: accounts, keys, products, subscriptions, records, tokens, entitlements,
        notification targets, deliveries; the test controls back to none."""
        ...

    def upsert_accounts(self, accounts: Sequence[Account]) -> None: ...

    def upsert_access_keys(self, keys: Sequence[AccessKey]) -> None: ...

    def upsert_products(self, products: Sequence[Product]) -> None: ...

    def upsert_subscriptions(self, subscriptions: Sequence[Subscription]) -> None:
        """Insert or replace each subscription by its `license_arn`, in a few statements
        however many there are (a later one of the same license wins)."""
        ...

    def upsert_account(self, account: Account) -> None: ...

    def upsert_access_key(self, key: AccessKey) -> None: ...

    def upsert_product(self, product: Product) -> None: ...

    def upsert_subscription(self, subscription: Subscription) -> None:
        """Insert or replace the subscription with this `license_arn`."""
        ...

    def add_signing_key(self, key: SigningKey) -> bool:
        """Store the key unless its version exists; True when stored."""
        ...

    def insert_registration_token(self, token: RegistrationToken) -> None: ...

    def put_entitlements(
        self, license_arn: str, entitlements: Sequence[Entitlement], *, replace_all: bool
    ) -> None:
        """Set these (by dimension); with `replace_all`, remove every other one too."""
        ...

    def remove_entitlement(self, license_arn: str, dimension: str) -> bool: ...

    def insert_deliveries(self, deliveries: Sequence[Delivery]) -> None: ...

    def cancel_deliveries(self, cancel_key: str) -> int:
        """Call off the pending deliveries of this key; how many."""
        ...

    def retry_delivery(self, delivery_id: str, now: datetime) -> Delivery | None:
        """Make a failed delivery, or one waiting out a backoff, due `now` (a failed one
        gets a new 24 hours of attempts); the delivery as it is now, or None when it is
        neither (or a worker is sending it)."""
        ...

    def add_webhook(self, webhook: Webhook) -> bool:
        """False when the product's topic already has this URL."""
        ...

    def confirm_webhook(self, token: str, at: datetime) -> Webhook | None:
        """Confirm the webhook this token was sent to; it, or None for an unknown token."""
        ...

    def remove_webhook(self, webhook_id: str) -> bool: ...

    def add_event_target(self, target: EventTarget) -> bool:
        """False when the URL already receives that product's (or every) event."""
        ...

    def remove_event_target(self, target_id: str) -> bool: ...

    def put_sns_key(self, private_pem: str, cert_pem: str) -> tuple[str, str]:
        """Keep this key unless one is kept already; the key kept."""
        ...

    def update_test_controls(self, controls: TestControls) -> None: ...

    def put_admin_token_hash(self, token_hash: str, at: datetime) -> str:
        """Keep this hash unless one is kept already; the hash kept."""
        ...

    def mark_test_controls_served(self, at: datetime) -> None:
        """A server obeying the test controls says so (a heartbeat)."""
        ...

    def take_internal_error(self) -> bool:
        """One of the `internal_errors` still to answer, if any is left (atomically)."""
        ...


class Store(Reader, Protocol):
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        ...

    def iter_records(self, product_code: str | None = None) -> Iterator[MeteringRecord]:
        """Every stored metering record (of one product), in the order stored."""
        ...

    def count_records(self, product_code: str | None = None) -> int: ...

    def claim_deliveries(self, now: datetime, limit: int, lease: float) -> list[Delivery]:
        """Pending deliveries due by `now`, oldest first, leased to the caller for `lease`
        seconds: no other process sends them meanwhile; after it, they are due again."""
        ...

    def finish_attempt(
        self,
        delivery: Delivery,
        attempt: Attempt,
        *,
        delivered: bool,
        retry_at: datetime | None,
    ) -> None:
        """Record an attempt: delivered; or to be tried again at `retry_at`; or failed."""
        ...

    def watch_catalog(self) -> CatalogWatch:
        """Start watching the catalog's changes (a cache's), from now on."""
        ...

    async def run(self, unit: Callable[[Transaction], T]) -> T:
        """Run `unit` in a transaction and return its result once that is committed; raise
        what it raised, with its writes undone. A store may run several units in one
        transaction (group commit)."""
        ...

    def close(self) -> None: ...
