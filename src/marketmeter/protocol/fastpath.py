"""The fast path of request decoding and validation: msgspec types compiled once from the
service model.

A well-formed request — nearly every request — is checked in one pass of msgspec's C code
against types built from the same shapes, lengths, ranges and patterns as
`validation`. Anything msgspec refuses, and anything it is not sure about (a timestamp
sent as a string, a NUL character), goes to `validation`, which is the authority: it
finds every violation and words them as AWS does. So the fast path may only ever be
stricter than the slow one, never more lenient.
"""

from __future__ import annotations

from typing import Annotated, Any, NotRequired, TypedDict

import msgspec
from botocore.model import ListShape, Shape, StructureShape

from marketmeter.protocol.service_model import METERING, service_model
from marketmeter.protocol.validation import DOMAIN_CHECKED_SHAPES

# Patterns that say no more than a length does.
_TRIVIAL_PATTERNS = {"[\\s\\S]*", "[\\s\\S]+"}


class _NoFastPath(Exception):
    """A shape msgspec cannot check exactly as the model means it: the slow path decides."""


_NEVER = Annotated[int, msgspec.Meta(ge=1, le=0)]
"""What a request that must take the slow path is decoded as: never decodes."""


def compile_fast_decoder(operation: str, service: str = METERING) -> msgspec.json.Decoder[Any]:
    shape = service_model(service).operation_model(operation).input_shape
    try:
        return msgspec.json.Decoder(_type(shape, {}))
    except _NoFastPath:
        return msgspec.json.Decoder(_NEVER)


def _type(shape: Shape, cache: dict[str, Any]) -> Any:
    if shape.name in cache:
        return cache[shape.name]
    enforce = shape.name not in DOMAIN_CHECKED_SHAPES
    kind = shape.type_name
    built: Any
    if kind == "structure":
        # A TypedDict: msgspec checks it as it decodes and hands back plain dicts (members
        # the model does not name left out), so the request is decoded once, not twice.
        assert isinstance(shape, StructureShape)
        required = set(shape.required_members) if enforce else set()
        members = {
            name: _type(member, cache) if name in required else NotRequired[_type(member, cache)]
            for name, member in shape.members.items()
        }
        built = _typed_dict(f"Fast{shape.name}", members)
    elif kind == "list":
        assert isinstance(shape, ListShape)
        built = _constrained(list[_type(shape.member, cache)], shape, enforce, length=True)  # type: ignore[misc]
    elif kind == "string":
        built = _constrained(str, shape, enforce, length=True, pattern=True)
    elif kind in ("integer", "long"):
        built = _constrained(int, shape, enforce)
    elif kind == "boolean":
        built = bool
    elif kind == "timestamp":
        built = int | float  # strings (ISO 8601, numeric) take the slow path
    elif kind == "map":
        raise _NoFastPath(shape.name)
    else:
        raise NotImplementedError(f"shape type {kind} ({shape.name})")
    cache[shape.name] = built
    return built


def _typed_dict(name: str, members: dict[str, Any]) -> Any:
    factory: Any = TypedDict  # (made at run time: mypy checks TypedDicts written out only)
    return factory(name, members)


def _constrained(
    base: Any, shape: Shape, enforce: bool, *, length: bool = False, pattern: bool = False
) -> Any:
    if not enforce:
        return base
    meta: dict[str, Any] = {}
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if length:
        if low:
            meta["min_length"] = low
        if high is not None:
            meta["max_length"] = high
    else:
        if low is not None:
            meta["ge"] = low
        if high is not None:
            meta["le"] = high
    regex = shape.metadata.get("pattern") if pattern else None
    if regex == "[\\s\\S]+":
        meta["min_length"] = max(meta.get("min_length", 0), 1)
    elif regex and regex not in _TRIVIAL_PATTERNS:
        meta["pattern"] = f"^(?:{regex})\\Z"  # msgspec searches; the model means the whole
    if getattr(shape, "enum", None):
        raise _NoFastPath(shape.name)
    return Annotated[base, msgspec.Meta(**meta)] if meta else base
