"""Sending closed hours: each group becomes one record stamped with the start of its hour
(its tag sets the record's allocations), in batches of 25 (`BatchMeterUsage`), or one
`MeterUsage` per dimension-hour in `resource` mode with a ClientToken made from the
group — so a send after a lost answer is the same request, recognised by the service.

Every record's status is read: `Success` is sent; `CustomerNotSubscribed` and
`DuplicateRecord` are failures with their reason; `UnprocessedRecords`, throttling and
the service's faults are tried again with backoff until the record's window would close,
then the record is *expired* — never dropped in silence.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from botocore.exceptions import BotoCoreError

from marketmeter.agent.outbox import Group, Outbox
from marketmeter.agent.rules import (
    MAX_ALLOCATIONS,
    MAX_DISTINCT_KEYS,
    MICROS,
    backoff,
    deadline,
    decimal_text,
)
from marketmeter.client import (
    MarketplaceError,
    MarketplaceMetering,
    Tag,
    UsageAllocation,
    UsageRecord,
)

log = logging.getLogger("marketmeter.agent")
BATCH = 25
LEASE = 120.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one hour's record of one customer and dimension ended."""

    state: str  # sent | failed | expired
    product_code: str
    customer: str
    license_arn: str
    dimension: str
    hour: datetime
    quantity: Decimal
    metering_record_id: str | None
    reason: str | None


class Sender:
    def __init__(
        self,
        client: MarketplaceMetering,
        outbox: Outbox,
        *,
        product_code: str,
        mode: str,
        clock: Callable[[], datetime],
        on_outcome: Callable[[Outcome], None] | None,
    ) -> None:
        self._client = client
        self._outbox = outbox
        self._product = product_code
        self._mode = mode
        self._clock = clock
        self._on_outcome = on_outcome
        self._namespace = uuid.UUID(int=uuid.UUID(outbox.id).int)

    def send_due(self, closed_before: int, limit: int = 500) -> int:
        """Claim and send the due groups of hours that started before `closed_before`."""
        now = self._clock()
        groups = self._outbox.claim(
            product_code=self._product,
            closed_before=closed_before,
            now=now.timestamp(),
            lease=LEASE,
            limit=limit,
        )
        live = []
        for group in groups:
            if deadline(group.hour, self._mode) <= now:
                self._end(group, "expired", reason="its window closed before it could be sent")
            else:
                live.append(group)
        if self._mode == "resource":
            for group in live:
                self._meter(group)
        else:
            by_kind: dict[tuple[str, bool], list[Group]] = {}
            for group in live:
                by_kind.setdefault((group.customer_kind, bool(group.license_arn)), []).append(group)
            for same in by_kind.values():
                for start in range(0, len(same), BATCH):
                    self._batch(same[start : start + BATCH])
        return len(groups)

    # -- the two ways to send ----------------------------------------------------------

    def _batch(self, groups: list[Group]) -> None:
        records, sendable = [], []
        for group in groups:
            record = self._record(group)
            if record is not None:
                records.append(record)
                sendable.append(group)
        if not records:
            return
        by_license = bool(sendable[0].license_arn)
        try:
            answer = self._client.batch_meter_usage(
                product_code=None if by_license else self._product, usage_records=records
            )
        except (MarketplaceError, BotoCoreError) as exc:
            for group in sendable:
                self._after_error(group, exc)
            return
        request_id = answer.raw.get("ResponseMetadata", {}).get("RequestId")
        log.debug("BatchMeterUsage of %d records: request %s", len(records), request_id)
        by_key: dict[tuple[object, ...], Group] = {
            _record_key(r): g for r, g in zip(records, sendable, strict=True)
        }
        for result in answer.results:
            if result.usage_record is None:
                continue
            found = by_key.pop(_record_key(result.usage_record), None)
            if found is None:
                continue
            group = found
            if result.status == "Success":
                self._end(group, "sent", record_id=result.metering_record_id)
            elif result.status == "DuplicateRecord":
                self._end(
                    group,
                    "failed",
                    reason="DuplicateRecord: the hour was metered before with another quantity",
                )
            else:
                self._end(group, "failed", reason=f"{result.status}")
        for group in by_key.values():  # UnprocessedRecords, or left out of the answer
            self._retry(group, "UnprocessedRecords: the service asked to send it again")

    def _meter(self, group: Group) -> None:
        allocations = self._allocations(group)
        if allocations is None:
            return
        micros = group.micros
        as_decimal = Decimal(decimal_text(micros)) if group.fractional else None
        try:
            answer = self._client.meter_usage(
                product_code=self._product,
                timestamp=datetime.fromtimestamp(group.hour, UTC),
                usage_dimension=group.dimension,
                usage_quantity=None if group.fractional else micros // MICROS,
                usage_quantity_as_decimal=as_decimal,
                usage_allocations=allocations or None,
                client_token=str(uuid.uuid5(self._namespace, "|".join(group.key()))),
            )
        except (MarketplaceError, BotoCoreError) as exc:
            self._after_error(group, exc)
            return
        self._end(group, "sent", record_id=answer.metering_record_id)

    # -- records -----------------------------------------------------------------------

    def _record(self, group: Group) -> UsageRecord | None:
        allocations = self._allocations(group)
        if allocations is None:
            return None
        micros = group.micros
        customer = {
            "identifier": {"customer_identifier": group.customer},
            "account": {"customer_aws_account_id": group.customer},
        }[group.customer_kind]
        return UsageRecord(
            timestamp=datetime.fromtimestamp(group.hour, UTC),
            dimension=group.dimension,
            license_arn=group.license_arn or None,
            quantity=None if group.fractional else micros // MICROS,
            quantity_as_decimal=Decimal(decimal_text(micros)) if group.fractional else None,
            usage_allocations=allocations or None,
            **customer,
        )

    def _allocations(self, group: Group) -> tuple[UsageAllocation, ...] | None:
        """The group's tag sets as allocations (empty when untagged); None when they break
        AWS's limits (the group is failed)."""
        if all(not tags for tags, _, _ in group.parts):
            return ()
        keys = {k for tags, _, _ in group.parts for k, _ in tags}
        if len(keys) > MAX_DISTINCT_KEYS or len(group.parts) > MAX_ALLOCATIONS:
            self._end(
                group,
                "failed",
                reason=f"more than {MAX_DISTINCT_KEYS} distinct tag keys "
                f"({', '.join(sorted(keys))}) or {MAX_ALLOCATIONS} tag sets in one hour",
            )
            return None
        fractional = group.fractional
        return tuple(
            UsageAllocation(
                allocated_usage_quantity=None if fractional else micros // MICROS,
                allocated_usage_quantity_as_decimal=(
                    Decimal(decimal_text(micros)) if fractional else None
                ),
                tags=tuple(Tag(k, v) for k, v in tags) or None,
            )
            for tags, micros, _ in group.parts
        )

    # -- outcomes ----------------------------------------------------------------------

    def _after_error(self, group: Group, exc: Exception) -> None:
        if isinstance(exc, MarketplaceError):
            if exc.code == "TimestampOutOfBoundsException":
                self._end(group, "expired", reason=f"{exc.code}: {exc.message}")
            elif exc.retryable:
                self._retry(group, f"{exc.code}: {exc.message}")
            else:
                self._end(group, "failed", reason=f"{exc.code}: {exc.message}")
        else:
            self._retry(group, f"{type(exc).__name__}: {exc}")

    def _retry(self, group: Group, reason: str) -> None:
        now = self._clock()
        at = now + timedelta(seconds=backoff(group.attempts))
        if at >= deadline(group.hour, self._mode):
            self._end(group, "expired", reason=f"its window closed while retrying ({reason})")
            return
        log.debug("will send again at %s: %s", at, reason)
        self._outbox.finish(
            group, state="open", now=now.timestamp(), reason=reason, retry_at=at.timestamp()
        )

    def _end(
        self, group: Group, state: str, *, reason: str | None = None, record_id: str | None = None
    ) -> None:
        self._outbox.finish(
            group, state=state, now=self._clock().timestamp(), reason=reason, record_id=record_id
        )
        if state != "sent":
            log.warning(
                "%s %s %s %s: %s",
                group.customer,
                group.dimension,
                datetime.fromtimestamp(group.hour, UTC).isoformat(),
                state,
                reason,
            )
        if self._on_outcome is not None:
            self._on_outcome(
                Outcome(
                    state,
                    group.product_code,
                    group.customer,
                    group.license_arn,
                    group.dimension,
                    datetime.fromtimestamp(group.hour, UTC),
                    Decimal(decimal_text(group.micros)),
                    record_id,
                    reason,
                )
            )


def _record_key(record: UsageRecord) -> tuple[object, ...]:
    return (
        record.customer_identifier,
        record.customer_aws_account_id,
        record.license_arn,
        record.dimension,
        int(record.timestamp.timestamp()),
    )
