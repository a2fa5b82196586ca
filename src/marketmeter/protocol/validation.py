"""Request validation compiled from the service model.

For every input shape a checker is built once: it checks JSON types (a wrong type is a
`SerializationException`, reported at once), converts timestamps, and collects every
constraint violation — required members, lengths, value ranges, patterns, enums — in the
wording of AWS's front end:

    1 validation error detected: Value '' at 'usageDimension' failed to satisfy
    constraint: Member must have length greater than or equal to 1

Constraints of tags and of the allocation list are left to the domain, which reports them
with the modeled InvalidTagException / InvalidUsageAllocationsException.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from marketmeter.protocol.service_model import METERING, service_model
from marketmeter.protocol.timestamps import NotATimestamp, parse_timestamp

# Shapes whose constraints the domain checks, to answer with the modeled error.
DOMAIN_CHECKED_SHAPES = frozenset({"Tag", "TagList", "TagKey", "TagValue", "UsageAllocations"})

NO_NUL = "Member must not contain the NUL character (U+0000)"
MAX_EXACT_FLOAT = 2**53  # a float beyond it is not a whole number anyone sent on purpose

Where = tuple[Any, str] | str | None
"""Where a value is, built lazily: (parent, "memberName") or (parent, "3.member"); the root
is None (or ""). Turned into text only when there is something to report."""

Checker = Callable[[Any, Where, list[str]], Any]
"""(value, where, violations) -> the value, converted; raises RequestNotReadable."""


class RequestNotReadable(ValueError):
    """A value of the wrong JSON type: a SerializationException."""


def render(where: Where) -> str:
    parts: list[str] = []
    while isinstance(where, tuple):
        where, key = where
        parts.append(key)
    if where:  # a path given as text
        parts.append(where)
    return ".".join(reversed(parts))


def member_path(parent: str, member: str) -> str:
    name = _camel(member)
    return f"{parent}.{name}" if parent else name


def _camel(member: str) -> str:
    return member[:1].lower() + member[1:]


def show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return f"'[{len(value)} items]'" if value else "'[]'"
    if isinstance(value, dict):
        return "'{…}'"
    if isinstance(value, bool):
        return "'true'" if value else "'false'"
    text = str(value)
    if len(text) > 256:
        text = text[:256] + "…"
    return f"'{text}'"


def violation(value: Any, where: Where, constraint: str) -> str:
    path = where if isinstance(where, str) else render(where)
    return f"Value {show(value)} at '{path}' failed to satisfy constraint: {constraint}"


def compile_input(operation: str, service: str = METERING) -> Checker:
    shape = service_model(service).operation_model(operation).input_shape
    return _compile(shape, {})


def _compile(shape: Shape, cache: dict[str, Checker]) -> Checker:
    if shape.name in cache:
        return cache[shape.name]
    enforce = shape.name not in DOMAIN_CHECKED_SHAPES  # (the domain also refuses NUL in tags)
    kind = shape.type_name
    checker: Checker
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        checker = _structure(shape, cache, enforce)
    elif kind == "list":
        assert isinstance(shape, ListShape)
        checker = _list(shape, _compile(shape.member, cache), enforce)
    elif kind == "string":
        checker = _string(shape, enforce)
    elif kind in ("integer", "long"):
        checker = _integer(shape, enforce)
    elif kind == "boolean":
        checker = _boolean
    elif kind == "timestamp":
        checker = _timestamp
    elif kind == "map":
        assert isinstance(shape, MapShape)
        checker = _map(_compile(shape.key, cache), _compile(shape.value, cache))
    else:  # the models have no other input types; fail loudly if one appears
        raise NotImplementedError(f"shape type {kind} ({shape.name})")
    cache[shape.name] = checker
    return checker


def _structure(shape: StructureShape, cache: dict[str, Checker], enforce: bool) -> Checker:
    members = {
        name: (_compile(member, cache), _camel(name)) for name, member in shape.members.items()
    }
    required = tuple((name, _camel(name)) for name in shape.required_members) if enforce else ()

    def check(value: Any, where: Where, out: list[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise RequestNotReadable(f"{_where(where)}expected a JSON object")
        result: dict[str, Any] = {}
        for name, camel in required:
            if value.get(name) is None:
                out.append(violation(None, (where, camel), "Member must not be null"))
        for name, member_value in value.items():
            member = members.get(name)
            if member is None or member_value is None:
                continue  # unknown members are ignored, as AWS does; null is absent
            result[name] = member[0](member_value, (where, member[1]), out)
        return result

    return check


def _list(shape: ListShape, member: Checker, enforce: bool) -> Checker:
    low, high = _bounds(shape, enforce)

    def check(value: Any, where: Where, out: list[str]) -> list[Any]:
        if not isinstance(value, list):
            raise RequestNotReadable(f"{_where(where)}expected a JSON array")
        _check_length(value, where, out, low, high)
        return [member(item, (where, f"{i}.member"), out) for i, item in enumerate(value, 1)]

    return check


def _map(key: Checker, value: Checker) -> Checker:
    def check(found: Any, where: Where, out: list[str]) -> dict[str, Any]:
        if not isinstance(found, dict):
            raise RequestNotReadable(f"{_where(where)}expected a JSON object")
        return {key(k, where, out): value(v, (where, k), out) for k, v in found.items()}

    return check


def _string(shape: Shape, enforce: bool) -> Checker:
    low, high = _bounds(shape, enforce)
    pattern_text = shape.metadata.get("pattern") if enforce else None
    pattern = re.compile(pattern_text) if pattern_text else None
    enum = tuple(shape.enum) if enforce and getattr(shape, "enum", None) else ()

    def check(value: Any, where: Where, out: list[str]) -> str:
        if not isinstance(value, str):
            raise RequestNotReadable(f"{_where(where)}expected a string")
        if enforce and "\x00" in value:
            out.append(violation(value.replace("\x00", "\\0"), where, NO_NUL))
        _check_length(value, where, out, low, high)
        if pattern is not None and pattern.fullmatch(value) is None:
            out.append(
                violation(
                    value, where, f"Member must satisfy regular expression pattern: {pattern_text}"
                )
            )
        if enum and value not in enum:
            out.append(
                violation(value, where, f"Member must satisfy enum value set: [{', '.join(enum)}]")
            )
        return value

    return check


def _integer(shape: Shape, enforce: bool) -> Checker:
    low, high = _bounds(shape, enforce)

    def check(value: Any, where: Where, out: list[str]) -> int:
        if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_EXACT_FLOAT:
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise RequestNotReadable(f"{_where(where)}expected a whole number, not {show(value)}")
        if low is not None and value < low:
            out.append(
                violation(value, where, f"Member must have value greater than or equal to {low}")
            )
        if high is not None and value > high:
            out.append(
                violation(value, where, f"Member must have value less than or equal to {high}")
            )
        return value

    return check


def _boolean(value: Any, where: Where, out: list[str]) -> bool:
    if not isinstance(value, bool):
        raise RequestNotReadable(f"{_where(where)}expected true or false, not {show(value)}")
    return value


def _timestamp(value: Any, where: Where, out: list[str]) -> Any:
    """Checked for being readable; kept as sent (the handlers read it: `parse_timestamp`)."""
    try:
        parse_timestamp(value)
        return value
    except NotATimestamp as exc:
        raise RequestNotReadable(
            f"{_where(where)}{show(value)} is not a timestamp ({exc}): send epoch seconds"
        ) from None


def _check_length(
    value: str | list[Any], where: Where, out: list[str], low: int | None, high: int | None
) -> None:
    if low is not None and len(value) < low:
        out.append(
            violation(value, where, f"Member must have length greater than or equal to {low}")
        )
    if high is not None and len(value) > high:
        out.append(violation(value, where, f"Member must have length less than or equal to {high}"))


def _bounds(shape: Shape, enforce: bool) -> tuple[int | None, int | None]:
    if not enforce:
        return None, None
    return shape.metadata.get("min"), shape.metadata.get("max")


def _where(where: Where) -> str:
    path = render(where)
    return f"Cannot read '{path}': " if path else "Cannot read the request: "
