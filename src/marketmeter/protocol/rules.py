"""Rules of the request's shape that the model cannot express: members that exclude each
other or of which exactly one is needed. Broken ones are reported with the model's
violations, in one ValidationException (DESIGN §5.3)."""

from __future__ import annotations

from typing import Any

from marketmeter.protocol.validation import member_path

_ONE_OF = "Member must specify exactly one of"
_AT_MOST_ONE = "Member must not specify both"


def _both_or_neither(
    value: dict[str, Any], path: str, a: str, b: str, out: list[str], *, need_one: bool
) -> None:
    has_a, has_b = a in value, b in value
    if has_a and has_b:
        out.append(f"{_where(path)} {_AT_MOST_ONE} {a} and {b}")
    elif need_one and not has_a and not has_b:
        out.append(f"{_where(path)} {_ONE_OF} {a} or {b}")


def _where(path: str) -> str:
    return f"Value at '{path or 'request'}' failed to satisfy constraint:"


def _allocations(value: dict[str, Any], path: str, out: list[str]) -> None:
    if "UsageAllocations" not in value:
        return
    for i, allocation in enumerate(value["UsageAllocations"] or (), 1):
        _both_or_neither(
            allocation,
            f"{member_path(path, 'UsageAllocations')}.{i}.member",
            "AllocatedUsageQuantity",
            "AllocatedUsageQuantityAsDecimal",
            out,
            need_one=True,
        )


def meter_usage_rules(request: dict[str, Any], out: list[str]) -> None:
    _both_or_neither(request, "", "UsageQuantity", "UsageQuantityAsDecimal", out, need_one=False)
    _allocations(request, "", out)


def batch_meter_usage_rules(request: dict[str, Any], out: list[str]) -> None:
    by_product = "ProductCode" in request
    records = request.get("UsageRecords") or []
    if not by_product and not records:
        out.append(
            "Value null at 'productCode' failed to satisfy constraint: Member must not be null "
            "(send ProductCode, or a LicenseArn in every UsageRecord)"
        )
    for i, record in enumerate(records, 1):
        if by_product and _plain(record):
            continue  # the usual record breaks no rule: skip making its path
        path = f"usageRecords.{i}.member"
        _both_or_neither(record, path, "Quantity", "QuantityAsDecimal", out, need_one=False)
        _both_or_neither(
            record, path, "CustomerIdentifier", "CustomerAWSAccountId", out, need_one=True
        )
        if by_product and "LicenseArn" in record:
            out.append(
                f"Value at '{path}' failed to satisfy constraint: {_AT_MOST_ONE} ProductCode "
                "and LicenseArn (send ProductCode for the request, or a LicenseArn per record)"
            )
        if not by_product:
            if "LicenseArn" not in record:
                out.append(
                    f"Value null at '{path}.licenseArn' failed to satisfy constraint: Member "
                    "must not be null (send ProductCode, or a LicenseArn in every UsageRecord)"
                )
            elif "CustomerAWSAccountId" not in record:
                out.append(
                    f"Value null at '{path}.customerAWSAccountId' failed to satisfy constraint: "
                    "Member must not be null (a LicenseArn is sent with CustomerAWSAccountId)"
                )
        _allocations(record, path, out)


def _plain(record: dict[str, Any]) -> bool:
    """A record of a request by ProductCode that breaks none of the rules and has no
    allocations (the rules below, decided without making the record's path)."""
    return (
        ("CustomerIdentifier" in record) != ("CustomerAWSAccountId" in record)
        and "LicenseArn" not in record
        and "UsageAllocations" not in record
        and not ("Quantity" in record and "QuantityAsDecimal" in record)
    )
