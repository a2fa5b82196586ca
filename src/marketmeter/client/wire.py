"""Dataclasses of `types` to and from the wire's members, named from botocore's models:
a field is the member whose `xform_name` it is. Decimals travel as strings (the model's
`…AsDecimal` members), everything else as botocore takes and gives it."""

from __future__ import annotations

import dataclasses
import types
import typing
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from botocore import xform_name
from botocore.session import get_session

T = TypeVar("T")
MODELS = ("meteringmarketplace", "marketplace-entitlement")


@cache
def shape_members(shape: str) -> dict[str, str]:
    """snake_case field → wire member, for a shape of either model."""
    session = get_session()
    for service in MODELS:
        model = session.get_service_model(service)
        if shape in model.shape_names:
            return {xform_name(m): m for m in model.shape_for(shape).members}
    raise KeyError(shape)


def to_wire(value: Any) -> Any:
    """A value for botocore: dataclasses as their members (unset ones left out), decimals
    as strings; a dict is taken as already in wire form."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = shape_members(type(value).SHAPE)  # type: ignore[attr-defined]
        return {
            names[f.name]: to_wire(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name in names and getattr(value, f.name) is not None
        }
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    return value


def from_wire(cls: type[T], data: dict[str, Any], *, raw: bool = False) -> T:
    """The dataclass `cls` made from botocore's answer (`raw`: keep it in `.raw`)."""
    names = shape_members(cls.SHAPE)  # type: ignore[attr-defined]
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name == "raw":
            if raw:
                values["raw"] = data
            continue
        member = names.get(f.name)
        if member is not None and data.get(member) is not None:
            values[f.name] = _convert(hints[f.name], data[member])
    return cls(**values)


def _convert(hint: Any, value: Any) -> Any:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
        origin = get_origin(hint)
    if origin is tuple:
        member = get_args(hint)[0]
        return tuple(_convert(member, v) for v in value)
    if dataclasses.is_dataclass(hint):
        return from_wire(hint, value)  # type: ignore[arg-type]
    if hint is Decimal:
        return Decimal(str(value))
    return value
