"""The installed botocore model against what marketmeter handles: a model change is noticed."""

from marketmeter.protocol.errors import ERROR_TYPES
from marketmeter.protocol.operations import HANDLED_INPUT_MEMBERS, compile_operations
from marketmeter.protocol.service_model import error_shape_names, is_fault, service_model


def test_every_operation_of_the_model_is_served() -> None:
    assert set(service_model().operation_names) == set(compile_operations())


def test_every_input_member_of_the_model_is_handled() -> None:
    model = service_model()
    for name in model.operation_names:
        members = set(model.operation_model(name).input_shape.members)
        assert members == HANDLED_INPUT_MEMBERS[name], name


# Statuses the service's Smithy model declares (@httpError) that botocore's model drops.
SMITHY_STATUS = {"IdempotencyConflictException": 409}


def test_every_modeled_error_has_a_domain_error_with_its_status() -> None:
    mapped = dict(ERROR_TYPES.values())
    for name in error_shape_names():
        assert name in mapped, name
        assert mapped[name] == SMITHY_STATUS.get(name, 500 if is_fault(name) else 400), name


def test_the_internal_error_is_the_only_fault() -> None:
    assert {n for n in error_shape_names() if is_fault(n)} == {"InternalServiceErrorException"}


def test_the_model_is_the_2026_revision() -> None:
    shapes = service_model().shape_for("UsageRecord").members
    assert "QuantityAsDecimal" in shapes
    resolve = service_model().operation_model("ResolveCustomer").output_shape.members
    assert "Metadata" in resolve
