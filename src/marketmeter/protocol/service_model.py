"""The service models, loaded from the installed botocore: the Metering API, and the
Entitlement Service on the same endpoint (its model ships gzipped; botocore's loader reads
it). Shapes, constraints, error names and the JSON target prefixes all come from here;
nothing in marketmeter copies them by hand.
"""

from __future__ import annotations

from functools import cache

from botocore.loaders import Loader
from botocore.model import ServiceModel

METERING = "meteringmarketplace"
ENTITLEMENT = "marketplace-entitlement"
SERVICES = (METERING, ENTITLEMENT)
SERVICE_NAME = METERING


@cache
def _loader() -> Loader:
    return Loader()


@cache
def service_model(name: str = METERING) -> ServiceModel:
    # The loader alone: a botocore Session would first register its hundreds of handlers.
    return ServiceModel(_loader().load_service_model(name, "service-2"), service_name=name)


def is_fault(error_shape_name: str, service: str = METERING) -> bool:
    """True for a server-side error shape (`"fault": true`): HTTP 500."""
    raw = service_model(service).shape_for(error_shape_name)._shape_model
    return bool(raw.get("fault", False))


def target_prefix(service: str = METERING) -> str:
    return str(service_model(service).metadata["targetPrefix"])


def signing_name(service: str = METERING) -> str:
    return str(service_model(service).signing_name)


def operation_names(service: str = METERING) -> list[str]:
    return list(service_model(service).operation_names)


def error_shape_names(service: str = METERING) -> set[str]:
    names: set[str] = set()
    model = service_model(service)
    for name in model.operation_names:
        names.update(shape.name for shape in model.operation_model(name).error_shapes)
    return names
