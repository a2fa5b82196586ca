"""Validation compiled from the botocore model: AWS's wording, every violation at once."""

from typing import Any

import pytest

from marketmeter.domain.errors import ValidationFailed
from marketmeter.protocol.rules import batch_meter_usage_rules, meter_usage_rules
from marketmeter.protocol.validation import RequestNotReadable, compile_input

CHECK = {
    op: compile_input(op)
    for op in ("BatchMeterUsage", "MeterUsage", "ResolveCustomer", "RegisterUsage")
}


def violations(op: str, payload: dict[str, Any]) -> list[str]:
    out: list[str] = []
    request = CHECK[op](payload, "", out)
    if not out:
        rules = {"BatchMeterUsage": batch_meter_usage_rules, "MeterUsage": meter_usage_rules}.get(
            op
        )
        if rules:
            rules(request, out)
    return out


def rec(**extra: Any) -> dict[str, Any]:
    return {
        "Timestamp": 1773577800,
        "Dimension": "users",
        "CustomerAWSAccountId": "444455556666",
        **extra,
    }


def test_26_records_are_refused_naming_the_constraint() -> None:
    found = violations("BatchMeterUsage", {"ProductCode": "p", "UsageRecords": [rec()] * 26})
    assert found == [
        "Value '[26 items]' at 'usageRecords' failed to satisfy constraint: "
        "Member must have length less than or equal to 25"
    ]
    assert str(ValidationFailed(found)).startswith(
        "1 validation error detected: Value '[26 items]'"
    )


def test_25_records_are_fine() -> None:
    assert violations("BatchMeterUsage", {"ProductCode": "p", "UsageRecords": [rec()] * 25}) == []


def test_every_violation_is_collected_with_one_based_paths() -> None:
    payload = {
        "ProductCode": "bad code!",
        "UsageRecords": [
            rec(),
            rec(Dimension="", Quantity=-1),
            {"Dimension": "d", "CustomerAWSAccountId": "12ab"},
        ],
    }
    found = violations("BatchMeterUsage", payload)
    assert found == [
        "Value 'bad code!' at 'productCode' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[-a-zA-Z0-9/=:_.@]*$",
        "Value '' at 'usageRecords.2.member.dimension' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        "Value '' at 'usageRecords.2.member.dimension' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\s\\S]+",
        "Value '-1' at 'usageRecords.2.member.quantity' failed to satisfy constraint: "
        "Member must have value greater than or equal to 0",
        "Value null at 'usageRecords.3.member.timestamp' failed to satisfy constraint: "
        "Member must not be null",
        "Value '12ab' at 'usageRecords.3.member.customerAWSAccountId' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: ^[0-9]+$",
    ]
    message = str(ValidationFailed(found))
    assert message.startswith("6 validation errors detected: Value 'bad code!'")
    assert "; Value '' at 'usageRecords.2.member.dimension'" in message


def test_meter_usage_required_members_and_limits() -> None:
    found = violations("MeterUsage", {"UsageQuantity": 2147483648, "ClientToken": "x" * 65})
    assert (
        "Value null at 'productCode' failed to satisfy constraint: Member must not be null" in found
    )
    assert (
        "Value null at 'timestamp' failed to satisfy constraint: Member must not be null" in found
    )
    assert (
        "Value null at 'usageDimension' failed to satisfy constraint: Member must not be null"
        in found
    )
    assert (
        "Value '2147483648' at 'usageQuantity' failed to satisfy constraint: "
        "Member must have value less than or equal to 2147483647" in found
    )
    assert any("at 'clientToken'" in v and "less than or equal to 64" in v for v in found)


def test_decimal_quantity_pattern_and_length() -> None:
    base = {"ProductCode": "p", "Timestamp": 1, "UsageDimension": "d"}
    for good in ("0", "17", "17.42", "9999999999.999999"):
        assert violations("MeterUsage", {**base, "UsageQuantityAsDecimal": good}) == []
    for bad in ("-1", "01", "1.", ".5", "1.1234567", "1e3", "12345678901"):
        found = violations("MeterUsage", {**base, "UsageQuantityAsDecimal": bad})
        assert any("usageQuantityAsDecimal" in v and "pattern" in v for v in found), bad


def test_register_usage_key_version_at_least_one() -> None:
    found = violations(
        "RegisterUsage", {"ProductCode": "p", "PublicKeyVersion": 0, "Nonce": "n" * 256}
    )
    assert found == [
        "Value '0' at 'publicKeyVersion' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
        "Value '" + "n" * 256 + "' at 'nonce' failed to satisfy constraint: "
        "Member must have length less than or equal to 255",
    ]


def test_empty_registration_token_fails_the_pattern() -> None:
    found = violations("ResolveCustomer", {"RegistrationToken": ""})
    assert found == [
        "Value '' at 'registrationToken' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\s\\S]+"
    ]


def test_tag_and_allocation_constraints_are_left_to_the_domain() -> None:
    six = [{"Key": f"k{i}", "Value": "v"} for i in range(6)]
    payload = {
        "ProductCode": "p",
        "Timestamp": 1,
        "UsageDimension": "d",
        "UsageAllocations": [{"AllocatedUsageQuantity": 1, "Tags": [*six, {"Key": ""}]}],
    }
    assert violations("MeterUsage", payload) == []


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"ProductCode": 5, "Timestamp": 1, "UsageDimension": "d"}, "productCode"),
        (
            {"ProductCode": "p", "Timestamp": 1, "UsageDimension": "d", "UsageQuantity": "3"},
            "usageQuantity",
        ),
        (
            {"ProductCode": "p", "Timestamp": 1, "UsageDimension": "d", "UsageQuantity": 1.5},
            "usageQuantity",
        ),
        ({"ProductCode": "p", "Timestamp": 1, "UsageDimension": "d", "DryRun": "yes"}, "dryRun"),
        ({"ProductCode": "p", "Timestamp": "yesterday", "UsageDimension": "d"}, "timestamp"),
        (
            {"ProductCode": "p", "Timestamp": 1, "UsageDimension": "d", "UsageAllocations": {}},
            "usageAllocations",
        ),
    ],
)
def test_wrong_json_types_are_unreadable(payload: dict[str, Any], where: str) -> None:
    with pytest.raises(RequestNotReadable, match=f"'{where}'"):
        violations("MeterUsage", payload)


def test_unknown_members_are_ignored() -> None:
    assert violations("ResolveCustomer", {"RegistrationToken": "t", "Extra": [1, 2]}) == []


class TestOneOfRules:
    def test_both_quantity_forms_are_refused(self) -> None:
        found = violations(
            "BatchMeterUsage",
            {"ProductCode": "p", "UsageRecords": [rec(Quantity=1, QuantityAsDecimal="1")]},
        )
        assert found == [
            "Value at 'usageRecords.1.member' failed to satisfy constraint: "
            "Member must not specify both Quantity and QuantityAsDecimal"
        ]

    def test_customer_identifier_and_account_id_exclude_each_other(self) -> None:
        both = rec(CustomerIdentifier="c")
        neither = {"Timestamp": 1, "Dimension": "users"}
        found = violations("BatchMeterUsage", {"ProductCode": "p", "UsageRecords": [both, neither]})
        assert found == [
            "Value at 'usageRecords.1.member' failed to satisfy constraint: "
            "Member must not specify both CustomerIdentifier and CustomerAWSAccountId",
            "Value at 'usageRecords.2.member' failed to satisfy constraint: "
            "Member must specify exactly one of CustomerIdentifier or CustomerAWSAccountId",
        ]

    def test_product_code_with_license_arn_is_refused(self) -> None:
        arn = "arn:aws:license-manager::444455556666:license:l-1"
        found = violations(
            "BatchMeterUsage", {"ProductCode": "p", "UsageRecords": [rec(LicenseArn=arn)]}
        )
        assert len(found) == 1 and "both ProductCode and LicenseArn" in found[0]

    def test_neither_product_code_nor_license_arn_is_refused(self) -> None:
        found = violations("BatchMeterUsage", {"UsageRecords": [rec()]})
        assert found == [
            "Value null at 'usageRecords.1.member.licenseArn' failed to satisfy constraint: Member "
            "must not be null (send ProductCode, or a LicenseArn in every UsageRecord)"
        ]
        assert violations("BatchMeterUsage", {"UsageRecords": []})[0].startswith(
            "Value null at 'productCode'"
        )

    def test_license_arn_needs_the_account_id(self) -> None:
        arn = "arn:aws:license-manager::444455556666:license:l-1"
        record = {
            "Timestamp": 1,
            "Dimension": "users",
            "CustomerIdentifier": "c",
            "LicenseArn": arn,
        }
        found = violations("BatchMeterUsage", {"UsageRecords": [record]})
        assert found == [
            "Value null at 'usageRecords.1.member.customerAWSAccountId' failed to satisfy "
            "constraint: Member must not be null (a LicenseArn is sent with CustomerAWSAccountId)"
        ]

    def test_each_allocation_needs_exactly_one_quantity(self) -> None:
        payload = {
            "ProductCode": "p",
            "Timestamp": 1,
            "UsageDimension": "d",
            "UsageAllocations": [
                {"Tags": [{"Key": "a", "Value": "b"}]},
                {"AllocatedUsageQuantity": 1, "AllocatedUsageQuantityAsDecimal": "1"},
            ],
        }
        found = violations("MeterUsage", payload)
        assert found == [
            "Value at 'usageAllocations.1.member' failed to satisfy constraint: Member must specify "
            "exactly one of AllocatedUsageQuantity or AllocatedUsageQuantityAsDecimal",
            "Value at 'usageAllocations.2.member' failed to satisfy constraint: Member must not "
            "specify both AllocatedUsageQuantity and AllocatedUsageQuantityAsDecimal",
        ]
