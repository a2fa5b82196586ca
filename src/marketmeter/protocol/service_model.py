"""The Metering API's service model, loaded from the installed botocore.

Shapes, constraints, error names and the JSON target prefix all come from here; nothing
in marketmeter copies them by hand.
"""

from __future__ import annotations

from functools import cache

from botocore.model import ServiceModel
from botocore.session import get_session

SERVICE_NAME = "meteringmarketplace"


@cache
def service_model() -> ServiceModel:
    return get_session().get_service_model(SERVICE_NAME)


def is_fault(error_shape_name: str) -> bool:
    """True for a server-side error shape (`"fault": true`): HTTP 500."""
    raw = service_model().shape_for(error_shape_name)._shape_model
    return bool(raw.get("fault", False))


def target_prefix() -> str:
    return str(service_model().metadata["targetPrefix"])


def signing_name() -> str:
    return str(service_model().signing_name)


def operation_names() -> list[str]:
    return list(service_model().operation_names)


def error_shape_names() -> set[str]:
    names: set[str] = set()
    model = service_model()
    for name in model.operation_names:
        names.update(shape.name for shape in model.operation_model(name).error_shapes)
    return names
