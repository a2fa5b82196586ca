"""MeterUsage and BatchMeterUsage: product, dimension, time window, allocations,
entitlement, then the slot claim — at most one record per slot, the database decides.

A retry identical by value (same quantity and allocations) gets the original record's id;
a different one gets DuplicateRecord (batch) or DuplicateRequest (MeterUsage). MeterUsage
also honours `ClientToken`: the same token with other parameters is an IdempotencyConflict.

Each operation is `prepare`d first — every check that needs no lock, done outside any
transaction — into a `Prepared`: the unit of work the database must run (the claims, and
what must be decided next to them) and how its result becomes the answer. A store may run
many prepared units together (group commit), so the write lock is held for the claims only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from marketmeter.clock import Clock, untravelled
from marketmeter.domain.allocations import check_allocations
from marketmeter.domain.entitlement import entitlement, existing_product
from marketmeter.domain.errors import (
    DryRunSucceeded,
    DuplicateRequest,
    IdempotencyConflict,
    InvalidCustomerIdentifier,
    InvalidEndpointRegion,
    InvalidLicense,
    InvalidProductCode,
    InvalidUsageDimension,
    ValidationFailed,
)
from marketmeter.domain.ids import new_ids
from marketmeter.domain.models import (
    BatchOutcome,
    Caller,
    ClientTokenEntry,
    MeteringRecord,
    MeterUsageRequest,
    Product,
    RecordResult,
    SlotKey,
    Subscription,
    UsageRecord,
    allocation_identity,
)
from marketmeter.domain.ports import Claiming, ClaimSlots, FirstClaim, Store, Transaction
from marketmeter.domain.timewindow import (
    check_batch_windows,
    check_meter_usage_window,
    floor_to_hour,
    outside_window,
)
from marketmeter.instants import to_ms

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Prepared(Generic[T, R]):
    """A request checked and ready: the unit of work, and what makes the answer of its result."""

    unit: Callable[[Transaction], T]
    finish: Callable[[T], R]

    def run(self, store: Store) -> R:
        """In a transaction of its own (the CLI, tests)."""
        with store.transaction() as tx:
            done = self.unit(tx)
        return self.finish(done)


class Metering:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    # -- BatchMeterUsage ---------------------------------------------------------------

    def batch_meter_usage(
        self, caller: Caller, product_code: str | None, records: list[UsageRecord]
    ) -> BatchOutcome:
        return self.prepare_batch(caller, product_code, records).run(self._store)

    def prepare_batch(
        self,
        caller: Caller,
        product_code: str | None,
        records: list[UsageRecord],
        unprocessed: frozenset[int] = frozenset(),
    ) -> Prepared[list[MeteringRecord], BatchOutcome]:
        """`unprocessed`: records (by index) left out, as the service sometimes does
        (test controls): neither stored nor answered, but sent back to be sent again."""
        now = self._clock.now()
        product, licenses = self._batch_product(caller, product_code, records)
        for record in records:
            _check_dimension(product, record.dimension)
        timestamps = {record.timestamp for record in records}
        check_batch_windows(timestamps, now)
        real = untravelled(self._clock)
        late = (
            frozenset(t for t in timestamps if outside_window(t, real, "BatchMeterUsage"))
            if real is not None
            else frozenset()
        )
        for record in records:
            check_allocations(record.quantity, record.allocations)
        if product.concurrent_agreements:
            for record in records:
                if record.customer_identifier is not None:
                    raise InvalidCustomerIdentifier(
                        f"Product {product.product_code} uses concurrent agreements: "
                        "BatchMeterUsage does not accept CustomerIdentifier for it. Send "
                        "CustomerAWSAccountId with LicenseArn instead."
                    )
        # The customers' subscriptions, all in one lookup (a cache answers most from memory).
        subscriptions = self._subscriptions_for(product, records, licenses, now)
        hours = {ts: floor_to_hour(ts) for ts in timestamps}

        results = [RecordResult("CustomerNotSubscribed") for _ in records]
        subscribed = [
            (i, record, subscription)
            for i, (record, subscription) in enumerate(zip(records, subscriptions, strict=True))
            if subscription is not None and i not in unprocessed
        ]
        ids = new_ids(len(subscribed), to_ms(now))
        candidates = [
            (i, _batch_record(record_id, product, record, subscription, hours, now, late))
            for record_id, (i, record, subscription) in zip(ids, subscribed, strict=True)
        ]
        # Slots are claimed in one global order (stable: same-slot records keep their input
        # order), so that concurrent transactions on PostgreSQL can never deadlock.
        candidates.sort(key=lambda item: item[1].slot)
        claims = ClaimSlots([candidate for _, candidate in candidates])

        def finish(occupants: list[MeteringRecord]) -> BatchOutcome:
            for (i, candidate), occupant in zip(candidates, occupants, strict=True):
                if occupant.record_id == candidate.record_id or occupant.same_usage(candidate):
                    results[i] = RecordResult("Success", occupant.record_id)
                else:
                    results[i] = RecordResult("DuplicateRecord")
            return BatchOutcome(tuple(results), tuple(sorted(unprocessed)))

        return Prepared(claims, finish)

    def _batch_product(
        self, caller: Caller, product_code: str | None, records: list[UsageRecord]
    ) -> tuple[Product, dict[str, Subscription]]:
        if product_code is not None:
            product = self._store.get_product(product_code)
            if product is None or product.seller_account_id != caller.account_id:
                raise InvalidProductCode(_not_your_product(product_code, caller))
            if product.type != "saas":
                raise InvalidProductCode(_not_saas(product))
            if any(r.license_arn is not None for r in records):  # the protocol refuses it too
                raise ValidationFailed(["ProductCode and a LicenseArn: send one or the other"])
            return product, {}
        licenses: dict[str, Subscription] = {}
        products: dict[str, Product] = {}
        for record in records:
            arn = record.license_arn
            if arn is None:  # the protocol layer refuses this; keep the domain whole
                raise ValidationFailed(["ProductCode or a LicenseArn in every UsageRecord"])
            subscription = licenses.get(arn) or self._store.get_subscription_by_license(arn)
            product = None
            if subscription is not None:
                product = products.get(subscription.product_code) or self._store.get_product(
                    subscription.product_code
                )
            if (
                subscription is None
                or product is None
                or product.seller_account_id != caller.account_id
            ):
                raise InvalidLicense(
                    f"Ensure the LicenseArn is valid, matches the customer, and usage is within "
                    f"the license activation period: no license {arn} was granted for a "
                    f"product of account {caller.account_id}."
                )
            if record.customer_aws_account_id != subscription.customer_aws_account_id:
                raise InvalidLicense(
                    f"Ensure the LicenseArn is valid, matches the customer, and usage is within "
                    f"the license activation period: license {arn} was not granted to "
                    f"account {record.customer_aws_account_id}."
                )
            licenses[arn] = subscription
            products[product.product_code] = product
        for product in products.values():
            if product.type != "saas":
                raise InvalidProductCode(_not_saas(product))
        if len(products) != 1:
            raise ValidationFailed(
                [
                    "Value at 'usageRecords' failed to satisfy constraint: every LicenseArn of "
                    f"one request must belong to one product (found {', '.join(sorted(products))})"
                ]
            )
        return next(iter(products.values())), licenses

    def _subscriptions_for(
        self,
        product: Product,
        records: list[UsageRecord],
        licenses: dict[str, Subscription],
        now: datetime,
    ) -> list[Subscription | None]:
        """Each record's active subscription (None: not subscribed), in record order."""
        accounts: set[str] = set()
        identifiers: set[str] = set()
        for r in records:
            if r.license_arn is None:
                if r.customer_identifier is not None:
                    identifiers.add(r.customer_identifier)
                elif r.customer_aws_account_id is not None:
                    accounts.add(r.customer_aws_account_id)
        found = self._store.subscriptions_of_customers(
            product.product_code, accounts=accounts, identifiers=identifiers
        )

        def active(candidates: tuple[Subscription, ...]) -> Subscription | None:
            for s in candidates:  # (a loop: this runs for every customer of every batch)
                if s.is_active(now):
                    return s
            return None

        by_account = {a: active(c) for a, c in found.by_account.items()}
        by_identifier = {i: active(c) for i, c in found.by_identifier.items()}
        out: list[Subscription | None] = []
        for r in records:
            if r.license_arn is not None:
                out.append(active((licenses[r.license_arn],)))
            elif r.customer_identifier is not None:
                out.append(by_identifier[r.customer_identifier])
            else:
                out.append(by_account.get(r.customer_aws_account_id or ""))
        return out

    # -- MeterUsage --------------------------------------------------------------------

    def meter_usage(self, caller: Caller, request: MeterUsageRequest) -> str:
        return self.prepare_meter(caller, request).run(self._store)

    def prepare_meter(self, caller: Caller, request: MeterUsageRequest) -> Prepared[str, str]:
        now = self._clock.now()
        product = existing_product(self._store, request.product_code)
        if product.type == "saas":
            raise InvalidProductCode(
                f"Product {product.product_code} is a SaaS product: MeterUsage meters AMI and "
                "container products. Use BatchMeterUsage for it."
            )
        resource_region = caller.access_key.region
        if resource_region is not None and resource_region != caller.region:
            raise InvalidEndpointRegion(
                f"The endpoint being called is in a Region ({caller.region}) different from "
                f"your resource's Region ({resource_region})."
            )
        _check_dimension(product, request.dimension)
        check_meter_usage_window(request.timestamp, now)
        check_allocations(request.quantity, request.allocations)
        subscription = entitlement(self._store, caller, product, now)

        candidate = MeteringRecord(
            record_id=new_ids(1, to_ms(now))[0],
            operation="MeterUsage",
            slot=SlotKey(
                product_code=product.product_code,
                customer_aws_account_id=caller.account_id,
                resource=caller.access_key.access_key_id,
                license_key="",
                dimension=request.dimension,
                hour=floor_to_hour(request.timestamp),
            ),
            timestamp=request.timestamp,
            quantity=request.quantity,
            allocations=request.allocations,
            customer_identifier=subscription.customer_identifier if subscription else "",
            license_arn=subscription.license_arn if subscription else "",
            received_at=now,
            accepted_late=(real := untravelled(self._clock)) is not None
            and outside_window(request.timestamp, real, "MeterUsage"),
        )
        token = request.client_token
        fingerprint = _fingerprint(caller, request) if token is not None else ""

        entry = (
            None
            if token is None or request.dry_run
            else ClientTokenEntry(caller.account_id, token, fingerprint, candidate.record_id, now)
        )

        def meter(tx: Transaction) -> str:
            # The usual request: its slot and its ClientToken, claimed together. The rarer
            # answers (a replayed or reused token, a duplicate, a dry run) are decided after,
            # in the order AWS decides them: the token first. A unit that raises leaves
            # nothing behind (the store runs it in a savepoint).
            if entry is not None:
                occupant, both = tx.claim_slot_and_token(candidate, entry)
                if both:
                    return candidate.record_id
            else:
                occupant = tx.claim_slot(candidate)
            same = occupant.record_id == candidate.record_id or occupant.same_usage(candidate)
            if token is not None and (request.dry_run or not same):
                earlier = tx.find_client_token(caller.account_id, token)
                if earlier is not None:
                    _check_fingerprint(earlier, fingerprint)
                    if request.dry_run:
                        raise DryRunSucceeded()
                    return earlier.record_id
            if not same:
                raise DuplicateRequest(
                    f"A metering record has already been emitted by this resource for dimension "
                    f"{request.dimension!r} in the hour starting "
                    f"{candidate.slot.hour:%Y-%m-%dT%H:%M:%SZ} with quantity "
                    f"{occupant.quantity.text}; recorded values can't be changed."
                )
            if request.dry_run:
                raise DryRunSucceeded()
            if token is None:
                return occupant.record_id
            claimed = tx.claim_client_token(
                ClientTokenEntry(caller.account_id, token, fingerprint, occupant.record_id, now)
            )
            _check_fingerprint(claimed, fingerprint)
            return claimed.record_id

        # (A dry run's claim is not sent ahead: the unit raises, which undoes it.)
        first = None if request.dry_run else FirstClaim([candidate], entry)
        return Prepared(Claiming(first, meter), _same)


def _check_fingerprint(entry: ClientTokenEntry, fingerprint: str) -> None:
    if entry.request_fingerprint != fingerprint:
        raise IdempotencyConflict(
            f"The ClientToken is being used for multiple requests: {entry.client_token!r} "
            "was first used with different parameters."
        )


def _same(record_id: str) -> str:
    return record_id


def _batch_record(  # noqa: PLR0917
    record_id: str,
    product: Product,
    record: UsageRecord,
    subscription: Subscription,
    hours: dict[datetime, datetime],
    now: datetime,
    late: frozenset[datetime],
) -> MeteringRecord:
    return MeteringRecord(  # positional: this runs for every record of every batch
        record_id,
        "BatchMeterUsage",
        SlotKey(
            product.product_code,
            subscription.customer_aws_account_id,
            "",
            record.license_arn or "",
            record.dimension,
            hours[record.timestamp],
        ),
        record.timestamp,
        record.quantity,
        record.allocations,
        subscription.customer_identifier,
        subscription.license_arn,
        now,
        bool(late) and record.timestamp in late,
    )


def _check_dimension(product: Product, dimension: str) -> None:
    if dimension not in product.dimensions:
        raise InvalidUsageDimension(
            f"The usage dimension does not match one of the UsageDimensions associated with "
            f"products: {dimension!r} is not a dimension of {product.product_code} "
            f"({', '.join(product.dimensions)})."
        )


def _not_saas(product: Product) -> str:
    return (
        f"Product {product.product_code} is an {product.type.upper()} product: "
        "BatchMeterUsage meters SaaS products. Use MeterUsage for it."
    )


def _not_your_product(product_code: str, caller: Caller) -> str:
    return (
        "The product code passed does not match the product code used for publishing the "
        f"product: account {caller.account_id} publishes no product {product_code}."
    )


def _fingerprint(caller: Caller, request: MeterUsageRequest) -> str:
    parts = (
        caller.access_key.access_key_id,
        request.product_code,
        request.dimension,
        request.timestamp.isoformat(timespec="milliseconds"),
        str(request.quantity.micros),
        repr(allocation_identity(request.allocations)),
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
