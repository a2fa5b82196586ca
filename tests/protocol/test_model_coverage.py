"""The installed botocore models against what marketmeter handles: a model change is
noticed. Both APIs of the endpoint: Metering and the Entitlement Service."""

import pytest

from marketmeter.protocol.errors import ERROR_TYPES
from marketmeter.protocol.operations import HANDLED_INPUT_MEMBERS, compile_operations
from marketmeter.protocol.service_model import (
    SERVICES,
    error_shape_names,
    is_fault,
    service_model,
    target_prefix,
)


def test_every_operation_of_both_models_is_served() -> None:
    modeled = {
        f"{target_prefix(service)}.{name}"
        for service in SERVICES
        for name in service_model(service).operation_names
    }
    assert modeled == set(compile_operations())


@pytest.mark.parametrize("service", SERVICES)
def test_every_input_member_of_the_model_is_handled(service: str) -> None:
    model = service_model(service)
    for name in model.operation_names:
        members = set(model.operation_model(name).input_shape.members)
        assert members == HANDLED_INPUT_MEMBERS[name], name


# Statuses the service's Smithy model declares (@httpError) that botocore's model drops.
SMITHY_STATUS = {"IdempotencyConflictException": 409}


@pytest.mark.parametrize("service", SERVICES)
def test_every_modeled_error_has_a_domain_error_with_its_status(service: str) -> None:
    mapped = dict(ERROR_TYPES.values())
    for name in error_shape_names(service):
        assert name in mapped, name
        fault = is_fault(name, service)
        assert mapped[name] == SMITHY_STATUS.get(name, 500 if fault else 400), name


@pytest.mark.parametrize("service", SERVICES)
def test_the_internal_error_is_the_only_fault(service: str) -> None:
    faults = {n for n in error_shape_names(service) if is_fault(n, service)}
    assert faults == {"InternalServiceErrorException"}


def test_the_model_is_the_2026_revision() -> None:
    shapes = service_model().shape_for("UsageRecord").members
    assert "QuantityAsDecimal" in shapes
    resolve = service_model().operation_model("ResolveCustomer").output_shape.members
    assert "Metadata" in resolve
