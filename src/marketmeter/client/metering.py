"""`MarketplaceMetering`: both APIs — Metering and the Entitlement Service — as typed
methods with snake_case keywords. Built on botocore: its credentials chain, signing,
endpoints and retries; errors become the classes of `errors`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from marketmeter.client.errors import from_client_error
from marketmeter.client.types import (
    BatchMeterUsageResult,
    Entitlement,
    GetEntitlementsResult,
    MeterUsageResult,
    RegisterUsageResult,
    ResolveCustomerResult,
    UsageAllocation,
    UsageRecord,
)
from marketmeter.client.wire import from_wire, to_wire

UsageRecordInput = UsageRecord | Mapping[str, Any]


class MarketplaceMetering:
    """A client of AWS Marketplace Metering and Entitlement — or of marketmeter, given its
    `endpoint_url`. Keywords are boto3's: `region_name`, `endpoint_url`,
    `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`, `config`; without
    keys, botocore's default credential chain. Or pass ready botocore clients."""

    def __init__(
        self,
        *,
        region_name: str | None = "us-east-1",
        endpoint_url: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        config: Config | None = None,
        metering_client: Any = None,
        entitlement_client: Any = None,
    ) -> None:
        session = botocore.session.get_session()
        keywords = {
            "region_name": region_name,
            "endpoint_url": endpoint_url,
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
            "config": config,
        }
        self.metering = metering_client or session.create_client("meteringmarketplace", **keywords)
        """The botocore client underneath, for what this class does not wrap."""
        self.entitlement = entitlement_client or session.create_client(
            "marketplace-entitlement", **keywords
        )

    def batch_meter_usage(
        self,
        *,
        usage_records: Sequence[UsageRecordInput],
        product_code: str | None = None,
    ) -> BatchMeterUsageResult:
        """Up to 25 records, by `product_code` or each by its `license_arn`."""
        params: dict[str, Any] = {"UsageRecords": [to_wire(r) for r in usage_records]}
        if product_code is not None:
            params["ProductCode"] = product_code
        return from_wire(
            BatchMeterUsageResult, self._call(self.metering.batch_meter_usage, params), raw=True
        )

    def meter_usage(
        self,
        *,
        product_code: str,
        timestamp: datetime,
        usage_dimension: str,
        usage_quantity: int | None = None,
        usage_quantity_as_decimal: Decimal | None = None,
        usage_allocations: Sequence[UsageAllocation] | None = None,
        dry_run: bool | None = None,
        client_token: str | None = None,
    ) -> MeterUsageResult:
        params = _members(
            ProductCode=product_code,
            Timestamp=timestamp,
            UsageDimension=usage_dimension,
            UsageQuantity=usage_quantity,
            UsageQuantityAsDecimal=usage_quantity_as_decimal,
            UsageAllocations=usage_allocations,
            DryRun=dry_run,
            ClientToken=client_token,
        )
        answer = self._call(self.metering.meter_usage, params)
        return from_wire(MeterUsageResult, answer, raw=True)

    def resolve_customer(self, *, registration_token: str) -> ResolveCustomerResult:
        params = {"RegistrationToken": registration_token}
        answer = self._call(self.metering.resolve_customer, params)
        return from_wire(ResolveCustomerResult, answer, raw=True)

    def register_usage(
        self, *, product_code: str, public_key_version: int, nonce: str | None = None
    ) -> RegisterUsageResult:
        params = _members(
            ProductCode=product_code, PublicKeyVersion=public_key_version, Nonce=nonce
        )
        return from_wire(
            RegisterUsageResult, self._call(self.metering.register_usage, params), raw=True
        )

    def get_entitlements(
        self,
        *,
        product_code: str,
        filter: Mapping[str, Iterable[str]] | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> GetEntitlementsResult:
        """One page. `filter`: CUSTOMER_IDENTIFIER, CUSTOMER_AWS_ACCOUNT_ID, LICENSE_ARN,
        DIMENSION → values."""
        params = _members(
            ProductCode=product_code,
            Filter=None if filter is None else {k: list(v) for k, v in filter.items()},
            MaxResults=max_results,
            NextToken=next_token,
        )
        answer = self._call(self.entitlement.get_entitlements, params)
        return from_wire(GetEntitlementsResult, answer, raw=True)

    def iter_entitlements(
        self,
        *,
        product_code: str,
        filter: Mapping[str, Iterable[str]] | None = None,
        page_size: int | None = None,
    ) -> Iterator[Entitlement]:
        """Every entitlement, page after page."""
        token: str | None = None
        while True:
            page = self.get_entitlements(
                product_code=product_code, filter=filter, max_results=page_size, next_token=token
            )
            yield from page.entitlements
            token = page.next_token
            if not token:
                return

    def close(self) -> None:
        self.metering.close()
        self.entitlement.close()

    @staticmethod
    def _call(method: Any, params: dict[str, Any]) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = method(**params)
        except ClientError as exc:
            raise from_client_error(exc.response) from exc
        return answer


def _members(**members: Any) -> dict[str, Any]:
    return {k: to_wire(v) for k, v in members.items() if v is not None}
