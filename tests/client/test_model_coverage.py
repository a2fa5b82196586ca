"""The typed client against botocore's models: every member of every shape it stands for
is a field, named as botocore names it; every error shape is a class."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from botocore import xform_name
from botocore.session import get_session

from marketmeter import client
from marketmeter.client import types
from marketmeter.client.wire import from_wire, to_wire

MODELS = ("meteringmarketplace", "marketplace-entitlement")
DATACLASSES = [
    cls
    for cls in vars(types).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and hasattr(cls, "SHAPE")
]


def shape(name: str):  # type: ignore[no-untyped-def]
    for service in MODELS:
        model = get_session().get_service_model(service)
        if name in model.shape_names:
            return model.shape_for(name)
    raise KeyError(name)


@pytest.mark.parametrize("cls", DATACLASSES, ids=lambda c: c.__name__)
def test_every_member_of_the_shape_is_a_field(cls: type) -> None:
    fields = {f.name for f in dataclasses.fields(cls)} - {"raw"}
    assert fields == {xform_name(m) for m in shape(cls.SHAPE).members}  # type: ignore[attr-defined]


def test_every_structure_the_operations_use_has_a_dataclass() -> None:
    covered = {cls.SHAPE for cls in DATACLASSES}  # type: ignore[attr-defined]
    for service in MODELS:
        model = get_session().get_service_model(service)
        for name in model.operation_names:
            output = model.operation_model(name).output_shape
            assert output.name in covered, output.name
            for member in output.members.values():
                target = getattr(member, "member", member)
                if target.type_name == "structure":
                    assert target.name in covered, target.name


def test_every_error_shape_is_a_class_of_the_client() -> None:
    for service in MODELS:
        model = get_session().get_service_model(service)
        for name in model.operation_names:
            for error in model.operation_model(name).error_shapes:
                cls = getattr(client, error.name)
                assert issubclass(cls, client.MarketplaceError)
                assert client.ERROR_CLASSES[error.name] is cls


def test_records_go_to_the_wire_in_its_names_and_come_back() -> None:
    at = datetime(2026, 12, 1, 10, tzinfo=UTC)
    record = client.UsageRecord(
        timestamp=at,
        dimension="users",
        customer_aws_account_id="444455556666",
        quantity_as_decimal=Decimal("2.50"),
        usage_allocations=(
            client.UsageAllocation(
                allocated_usage_quantity_as_decimal=Decimal("2.50"),
                tags=(client.Tag("team", "a"),),
            ),
        ),
    )
    wire = to_wire(record)
    assert wire == {
        "Timestamp": at,
        "Dimension": "users",
        "CustomerAWSAccountId": "444455556666",
        "QuantityAsDecimal": "2.50",
        "UsageAllocations": [
            {"AllocatedUsageQuantityAsDecimal": "2.50", "Tags": [{"Key": "team", "Value": "a"}]}
        ],
    }
    assert from_wire(client.UsageRecord, wire) == record
