"""The store interface the domain is written against.

`Reader` answers questions; `Transaction` adds writes, all committed together or not at
all; `Store` hands out transactions and reads outside them. Implementations:
`sqlite.SqliteStore` and `postgres.PostgresStore`, both on the shared SQL of `sql`; a
server wraps either in `cache.CachedStore`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from marketmeter.domain.models import (
    AccessKey,
    Account,
    ClientTokenEntry,
    MeteringRecord,
    Product,
    RegistrationToken,
    SigningKey,
    Subscription,
)

T = TypeVar("T")


class StoreUnavailable(Exception):
    """The database could not be reached or could not complete the work (retryable)."""


class StoreConflict(Exception):
    """Data the database refuses: a uniqueness or reference rule of the schema broken, or a
    value it cannot hold (a caller's mistake, not a fault)."""


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

    def customer_identifier_of(self, customer_aws_account_id: str) -> str | None:
        """The CustomerIdentifier already given to this buyer account, if any."""
        ...

    def get_registration_token(self, token: str) -> RegistrationToken | None: ...

    def get_signing_key(self, product_code: str, version: int) -> SigningKey | None: ...

    def latest_signing_key_version(self, product_code: str) -> int | None: ...

    def find_client_token(self, account_id: str, client_token: str) -> ClientTokenEntry | None: ...


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


class Store(Reader, Protocol):
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        ...

    def iter_records(self, product_code: str | None = None) -> Iterator[MeteringRecord]:
        """Every stored metering record (of one product), in the order stored."""
        ...

    def count_records(self, product_code: str | None = None) -> int: ...

    async def run(self, unit: Callable[[Transaction], T]) -> T:
        """Run `unit` in a transaction and return its result once that is committed; raise
        what it raised, with its writes undone. A store may run several units in one
        transaction (group commit)."""
        ...

    def close(self) -> None: ...
