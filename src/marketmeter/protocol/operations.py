"""The operations on the wire — the Metering API's four, the Entitlement Service's one:
request members → domain call → response members.

Each request is decoded and checked against its model shape — in one pass of msgspec for
a well-formed request (`fastpath`), else by `validation`, which reports every violation —
and against the one-of rules (`rules`). Then the members become domain values and the
`MeteringService` is called; its answer becomes the response shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from marketmeter.domain.entitlements import wire_value
from marketmeter.domain.errors import ValidationFailed
from marketmeter.domain.models import (
    Allocation,
    BatchOutcome,
    Caller,
    MeterUsageRequest,
    Tag,
    UsageRecord,
)
from marketmeter.domain.quantities import ZERO, Quantity
from marketmeter.domain.service import MeteringService
from marketmeter.protocol.fastpath import compile_fast_decoder
from marketmeter.protocol.rules import batch_meter_usage_rules, meter_usage_rules
from marketmeter.protocol.service_model import (
    ENTITLEMENT,
    METERING,
    service_model,
    target_prefix,
)
from marketmeter.protocol.timestamps import parse_timestamp, to_epoch_seconds
from marketmeter.protocol.validation import Checker, RequestNotReadable, compile_input

Handler = Callable[[MeteringService, Caller, dict[str, Any]], dict[str, Any]]
AsyncHandler = Callable[[MeteringService, Caller, dict[str, Any]], Awaitable[dict[str, Any]]]
Rules = Callable[[dict[str, Any], list[str]], None]


@dataclass(frozen=True, slots=True)
class WireOperation:
    name: str
    check: Checker
    fast: msgspec.json.Decoder[Any]
    rules: Rules | None
    handler: Handler
    async_handler: AsyncHandler
    grouped: bool
    """Its writes are units of work the store may group with others' (`Store.run`)."""

    def invoke(self, service: MeteringService, caller: Caller, body: bytes) -> dict[str, Any]:
        """Raises RequestNotReadable (a SerializationException) or a domain error."""
        caller, request = self._admitted_request(service, caller, body)
        return self.handler(service, caller, request)

    async def invoke_async(
        self, service: MeteringService, caller: Caller, body: bytes
    ) -> dict[str, Any]:
        """`invoke` for an event loop: the store runs the unit of work when it will."""
        caller, request = self._admitted_request(service, caller, body)
        return await self.async_handler(service, caller, request)

    def _admitted_request(
        self, service: MeteringService, caller: Caller, body: bytes
    ) -> tuple[Caller, dict[str, Any]]:
        request, checked = self._decode(body or b"{}")
        caller = service.admit(caller, self.name, dry_run=request.get("DryRun") is True)
        violations: list[str] = []
        if not checked:
            request = self.check(request, None, violations)
        if self.rules is not None and not violations:
            self.rules(request, violations)
        if violations:
            raise ValidationFailed(violations)
        return caller, request

    def _decode(self, body: bytes) -> tuple[dict[str, Any], bool]:
        """The request as a dict, and whether the fast path already checked it (then it
        is the fast path's own decoding: one pass over the body)."""
        if b"\\u0000" not in body:  # NUL is refused with a message only `validation` gives
            try:
                return self.fast.decode(body), True
            except Exception:  # anything at all: `validation` has the last word
                pass
        try:
            # The same parser as the fast path's, so both see the same numbers.
            request = msgspec.json.decode(body)
        except Exception as exc:  # malformed, too deep, not UTF-8…
            raise RequestNotReadable(f"The request body is not valid JSON: {exc}") from None
        if not isinstance(request, dict):
            raise RequestNotReadable("The request body must be a JSON object.")
        return request, False


# -- conversions -----------------------------------------------------------------------


def _quantity(members: dict[str, Any], integer: str, decimal: str) -> Quantity:
    if integer in members:
        return Quantity.from_integer(members[integer])
    if decimal in members:
        return Quantity.from_decimal_string(members[decimal])
    return ZERO


def _allocations(members: dict[str, Any]) -> tuple[Allocation, ...] | None:
    sent = members.get("UsageAllocations")
    if sent is None:
        return None
    return tuple(
        Allocation(
            _quantity(a, "AllocatedUsageQuantity", "AllocatedUsageQuantityAsDecimal"),
            tuple(Tag(t.get("Key", ""), t.get("Value", "")) for t in a.get("Tags") or ()),
        )
        for a in sent
    )


_USAGE_RECORD_MEMBERS = frozenset(service_model().shape_for("UsageRecord").members)


def _echo(record: dict[str, Any]) -> dict[str, Any]:
    """The UsageRecord as the service read it: its members, the timestamp as a number.
    (Usually the decoded record itself: the request is not used once answered.)"""
    sent = record["Timestamp"]
    numeric = isinstance(sent, (int, float))
    if numeric and record.keys() <= _USAGE_RECORD_MEMBERS:
        return record
    echoed = {k: v for k, v in record.items() if k in _USAGE_RECORD_MEMBERS}
    if not numeric:
        echoed["Timestamp"] = to_epoch_seconds(parse_timestamp(sent))
    return echoed


# -- handlers --------------------------------------------------------------------------


def _batch_records(request: dict[str, Any]) -> list[UsageRecord]:
    sent = request.get("UsageRecords", [])
    timestamps: dict[Any, Any] = {}  # records of a batch mostly share their timestamp
    records = []
    for r in sent:
        raw = r["Timestamp"]
        timestamp = timestamps.get(raw)
        if timestamp is None:
            timestamp = timestamps[raw] = parse_timestamp(raw)
        records.append(
            UsageRecord(
                timestamp,
                r["Dimension"],
                _quantity(r, "Quantity", "QuantityAsDecimal"),
                r.get("CustomerIdentifier"),
                r.get("CustomerAWSAccountId"),
                r.get("LicenseArn"),
                _allocations(r) if "UsageAllocations" in r else None,
            )
        )
    return records


def _batch_answer(request: dict[str, Any], outcome: BatchOutcome) -> dict[str, Any]:
    sent = request.get("UsageRecords", [])
    results = []
    left_out = set(outcome.unprocessed)
    for i, (record, result) in enumerate(zip(sent, outcome.results, strict=True)):
        if i in left_out:
            continue
        item: dict[str, Any] = {"UsageRecord": _echo(record), "Status": result.status}
        if result.metering_record_id is not None:
            item["MeteringRecordId"] = result.metering_record_id
        results.append(item)
    return {
        "Results": results,
        "UnprocessedRecords": [_echo(sent[i]) for i in outcome.unprocessed],
    }


def _batch_meter_usage(
    service: MeteringService, caller: Caller, request: dict[str, Any]
) -> dict[str, Any]:
    outcome = service.batch_meter_usage(caller, request.get("ProductCode"), _batch_records(request))
    return _batch_answer(request, outcome)


async def _batch_meter_usage_async(
    service: MeteringService, caller: Caller, request: dict[str, Any]
) -> dict[str, Any]:
    outcome = await service.batch_meter_usage_async(
        caller, request.get("ProductCode"), _batch_records(request)
    )
    return _batch_answer(request, outcome)


def _meter_request(request: dict[str, Any]) -> MeterUsageRequest:
    return MeterUsageRequest(
        product_code=request["ProductCode"],
        timestamp=parse_timestamp(request["Timestamp"]),
        dimension=request["UsageDimension"],
        quantity=_quantity(request, "UsageQuantity", "UsageQuantityAsDecimal"),
        allocations=_allocations(request),
        dry_run=request.get("DryRun", False),
        client_token=request.get("ClientToken"),
    )


def _meter_usage(
    service: MeteringService, caller: Caller, request: dict[str, Any]
) -> dict[str, Any]:
    return {"MeteringRecordId": service.meter_usage(caller, _meter_request(request))}


async def _meter_usage_async(
    service: MeteringService, caller: Caller, request: dict[str, Any]
) -> dict[str, Any]:
    record_id = await service.meter_usage_async(caller, _meter_request(request))
    return {"MeteringRecordId": record_id}


def _at_once(handler: Handler) -> AsyncHandler:
    """An operation that only reads: the same work, on the event loop."""

    async def run(
        service: MeteringService, caller: Caller, request: dict[str, Any]
    ) -> dict[str, Any]:
        return handler(service, caller, request)

    return run


def _resolve_customer(
    service: MeteringService, caller: Caller, request: dict[str, Any]
) -> dict[str, Any]:
    resolved = service.resolve_customer(caller, request["RegistrationToken"])
    response: dict[str, Any] = {}
    if resolved.customer_identifier is not None:
        response["CustomerIdentifier"] = resolved.customer_identifier
    response["ProductCode"] = resolved.product_code
    response["CustomerAWSAccountId"] = resolved.customer_aws_account_id
    response["LicenseArn"] = resolved.license_arn
    response["Metadata"] = {"AgreementId": resolved.agreement_id}
    return response


def _register_usage(
    service: MeteringService, caller: Caller, request: dict[str, Any]
) -> dict[str, Any]:
    outcome = service.register_usage(
        caller, request["ProductCode"], request["PublicKeyVersion"], request.get("Nonce")
    )
    response: dict[str, Any] = {}
    if outcome.public_key_rotation_timestamp is not None:
        response["PublicKeyRotationTimestamp"] = to_epoch_seconds(
            outcome.public_key_rotation_timestamp
        )
    response["Signature"] = outcome.signature
    return response


def _get_entitlements(
    service: MeteringService, caller: Caller, request: dict[str, Any]
) -> dict[str, Any]:
    page = service.get_entitlements(
        caller,
        request["ProductCode"],
        request.get("Filter") or {},
        request.get("MaxResults"),
        request.get("NextToken"),
    )
    entitlements = []
    for subscription, entitlement in page.found:
        item: dict[str, Any] = {
            "ProductCode": subscription.product_code,
            "Dimension": entitlement.dimension,
            "CustomerIdentifier": subscription.customer_identifier,
            "CustomerAWSAccountId": subscription.customer_aws_account_id,
            "LicenseArn": subscription.license_arn,
            "Value": wire_value(entitlement),
        }
        if entitlement.expires_at is not None:
            item["ExpirationDate"] = to_epoch_seconds(entitlement.expires_at)
        entitlements.append(item)
    response: dict[str, Any] = {"Entitlements": entitlements}
    if page.next_token is not None:
        response["NextToken"] = page.next_token
    return response


_HANDLERS: dict[str, tuple[Handler, AsyncHandler, Rules | None]] = {
    "BatchMeterUsage": (_batch_meter_usage, _batch_meter_usage_async, batch_meter_usage_rules),
    "MeterUsage": (_meter_usage, _meter_usage_async, meter_usage_rules),
    "ResolveCustomer": (_resolve_customer, _at_once(_resolve_customer), None),
    "RegisterUsage": (_register_usage, _at_once(_register_usage), None),
}
_GROUPED = frozenset({"BatchMeterUsage", "MeterUsage"})
_ENTITLEMENT_HANDLERS: dict[str, tuple[Handler, AsyncHandler, Rules | None]] = {
    "GetEntitlements": (_get_entitlements, _at_once(_get_entitlements), None),
}

HANDLED_INPUT_MEMBERS: dict[str, frozenset[str]] = {
    "BatchMeterUsage": frozenset({"UsageRecords", "ProductCode"}),
    "MeterUsage": frozenset(
        {
            "ProductCode",
            "Timestamp",
            "UsageDimension",
            "UsageQuantity",
            "UsageQuantityAsDecimal",
            "DryRun",
            "UsageAllocations",
            "ClientToken",
        }
    ),
    "ResolveCustomer": frozenset({"RegistrationToken"}),
    "RegisterUsage": frozenset({"ProductCode", "PublicKeyVersion", "Nonce"}),
    "GetEntitlements": frozenset({"ProductCode", "Filter", "NextToken", "MaxResults"}),
}
"""Every input member each handler reads; a test compares it with the installed model."""


def compile_operations() -> dict[str, WireOperation]:
    """Every operation of both APIs, by its `X-Amz-Target` (`<targetPrefix>.<name>`)."""
    out = {}
    for service, handlers in ((METERING, _HANDLERS), (ENTITLEMENT, _ENTITLEMENT_HANDLERS)):
        prefix = target_prefix(service)
        for name, (handler, async_handler, rules) in handlers.items():
            out[f"{prefix}.{name}"] = WireOperation(
                name,
                compile_input(name, service),
                compile_fast_decoder(name, service),
                rules,
                handler,
                async_handler,
                grouped=name in _GROUPED,
            )
    return out
