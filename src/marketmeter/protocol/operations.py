"""The four operations on the wire: request members → domain call → response members.

Each request is first checked against its model shape (`validation`) and the one-of rules
(`rules`); every violation is reported at once. Then the members become domain values and
the `MeteringService` is called; its answer becomes the response shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marketmeter.domain.errors import ValidationFailed
from marketmeter.domain.models import (
    Allocation,
    Caller,
    MeterUsageRequest,
    Tag,
    UsageRecord,
)
from marketmeter.domain.quantities import ZERO, Quantity
from marketmeter.domain.service import MeteringService
from marketmeter.protocol.rules import batch_meter_usage_rules, meter_usage_rules
from marketmeter.protocol.timestamps import to_epoch_seconds
from marketmeter.protocol.validation import Checker, compile_input

Handler = Callable[[MeteringService, Caller, dict[str, Any]], dict[str, Any]]
Rules = Callable[[dict[str, Any], list[str]], None]


@dataclass(frozen=True, slots=True)
class WireOperation:
    name: str
    check: Checker
    rules: Rules | None
    handler: Handler

    def invoke(self, service: MeteringService, caller: Caller, payload: Any) -> dict[str, Any]:
        dry_run = isinstance(payload, dict) and payload.get("DryRun") is True
        caller = service.admit(caller, self.name, dry_run=dry_run)
        violations: list[str] = []
        request = self.check(payload, "", violations)
        if self.rules is not None and not violations:
            self.rules(request, violations)
        if violations:
            raise ValidationFailed(violations)
        return self.handler(service, caller, request)


# -- conversions -----------------------------------------------------------------------


def _quantity(members: dict[str, Any], integer: str, decimal: str) -> Quantity:
    if decimal in members:
        return Quantity.from_decimal_string(members[decimal])
    if integer in members:
        return Quantity.from_integer(members[integer])
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


def _echo(record: dict[str, Any]) -> dict[str, Any]:
    echoed = dict(record)
    echoed["Timestamp"] = to_epoch_seconds(record["Timestamp"])
    return echoed


# -- handlers --------------------------------------------------------------------------


def _batch_meter_usage(
    service: MeteringService, caller: Caller, request: dict[str, Any]
) -> dict[str, Any]:
    sent = request.get("UsageRecords", [])
    records = [
        UsageRecord(
            timestamp=r["Timestamp"],
            dimension=r["Dimension"],
            quantity=_quantity(r, "Quantity", "QuantityAsDecimal"),
            customer_identifier=r.get("CustomerIdentifier"),
            customer_aws_account_id=r.get("CustomerAWSAccountId"),
            license_arn=r.get("LicenseArn"),
            allocations=_allocations(r),
        )
        for r in sent
    ]
    outcome = service.batch_meter_usage(caller, request.get("ProductCode"), records)
    results = []
    for record, result in zip(sent, outcome.results, strict=True):
        item: dict[str, Any] = {"UsageRecord": _echo(record), "Status": result.status}
        if result.metering_record_id is not None:
            item["MeteringRecordId"] = result.metering_record_id
        results.append(item)
    return {
        "Results": results,
        "UnprocessedRecords": [_echo(sent[i]) for i in outcome.unprocessed],
    }


def _meter_usage(
    service: MeteringService, caller: Caller, request: dict[str, Any]
) -> dict[str, Any]:
    record_id = service.meter_usage(
        caller,
        MeterUsageRequest(
            product_code=request["ProductCode"],
            timestamp=request["Timestamp"],
            dimension=request["UsageDimension"],
            quantity=_quantity(request, "UsageQuantity", "UsageQuantityAsDecimal"),
            allocations=_allocations(request),
            dry_run=request.get("DryRun", False),
            client_token=request.get("ClientToken"),
        ),
    )
    return {"MeteringRecordId": record_id}


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


_HANDLERS: dict[str, tuple[Handler, Rules | None]] = {
    "BatchMeterUsage": (_batch_meter_usage, batch_meter_usage_rules),
    "MeterUsage": (_meter_usage, meter_usage_rules),
    "ResolveCustomer": (_resolve_customer, None),
    "RegisterUsage": (_register_usage, None),
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
}
"""Every input member each handler reads; a test compares it with the installed model."""


def compile_operations() -> dict[str, WireOperation]:
    return {
        name: WireOperation(name, compile_input(name), rules, handler)
        for name, (handler, rules) in _HANDLERS.items()
    }
