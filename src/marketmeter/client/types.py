"""The values of both APIs as frozen dataclasses with snake_case fields. Each names the
model shape it stands for (`SHAPE`); a test checks every member of every shape has its
field, named as botocore names it (`xform_name`), so a new member of the API cannot go
unnoticed. `marketmeter.client.wire` converts them to and from the wire."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar


@dataclass(frozen=True)
class Tag:
    SHAPE: ClassVar[str] = "Tag"
    key: str
    value: str


@dataclass(frozen=True)
class UsageAllocation:
    SHAPE: ClassVar[str] = "UsageAllocation"
    allocated_usage_quantity: int | None = None
    allocated_usage_quantity_as_decimal: Decimal | None = None
    tags: tuple[Tag, ...] | None = None


@dataclass(frozen=True)
class UsageRecord:
    SHAPE: ClassVar[str] = "UsageRecord"
    timestamp: datetime
    dimension: str
    customer_identifier: str | None = None
    customer_aws_account_id: str | None = None
    license_arn: str | None = None
    quantity: int | None = None
    quantity_as_decimal: Decimal | None = None
    usage_allocations: tuple[UsageAllocation, ...] | None = None


@dataclass(frozen=True)
class UsageRecordResult:
    SHAPE: ClassVar[str] = "UsageRecordResult"
    usage_record: UsageRecord | None = None
    metering_record_id: str | None = None
    status: str | None = None
    """Success, CustomerNotSubscribed or DuplicateRecord."""


@dataclass(frozen=True)
class BatchMeterUsageResult:
    SHAPE: ClassVar[str] = "BatchMeterUsageResult"
    results: tuple[UsageRecordResult, ...] = ()
    unprocessed_records: tuple[UsageRecord, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class MeterUsageResult:
    SHAPE: ClassVar[str] = "MeterUsageResult"
    metering_record_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ResolveCustomerMetadata:
    SHAPE: ClassVar[str] = "Metadata"
    agreement_id: str | None = None


@dataclass(frozen=True)
class ResolveCustomerResult:
    SHAPE: ClassVar[str] = "ResolveCustomerResult"
    customer_identifier: str | None = None
    product_code: str | None = None
    customer_aws_account_id: str | None = None
    license_arn: str | None = None
    metadata: ResolveCustomerMetadata | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class RegisterUsageResult:
    SHAPE: ClassVar[str] = "RegisterUsageResult"
    public_key_rotation_timestamp: datetime | None = None
    signature: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class EntitlementValue:
    SHAPE: ClassVar[str] = "EntitlementValue"
    integer_value: int | None = None
    double_value: float | None = None
    boolean_value: bool | None = None
    string_value: str | None = None

    @property
    def value(self) -> int | float | bool | str | None:
        """The one member that is set."""
        for found in (self.integer_value, self.double_value, self.boolean_value):
            if found is not None:
                return found
        return self.string_value


@dataclass(frozen=True)
class Entitlement:
    SHAPE: ClassVar[str] = "Entitlement"
    product_code: str | None = None
    dimension: str | None = None
    customer_identifier: str | None = None
    customer_aws_account_id: str | None = None
    value: EntitlementValue | None = None
    expiration_date: datetime | None = None
    license_arn: str | None = None


@dataclass(frozen=True)
class GetEntitlementsResult:
    SHAPE: ClassVar[str] = "GetEntitlementsResult"
    entitlements: tuple[Entitlement, ...] = ()
    next_token: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
