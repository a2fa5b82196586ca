"""Reading a document file (a catalog): JSON, or YAML with PyYAML's safe rules.

JSON goes to orjson. YAML is parsed by libyaml (PyYAML's C parser) and built here from its
events — the same values PyYAML's safe loader gives, about five times faster: PyYAML's own
loader makes a node object and calls its Python resolver for every scalar, most of the
time of a large catalog. Plain scalars are resolved with PyYAML's own implicit resolvers
and constructed by PyYAML's own `SafeConstructor`, so `yes`, `0x1f`, `~` or a date mean
what they mean to PyYAML. A document using what this builder leaves to PyYAML (anchors and
aliases, merge keys, explicit tags, several documents) is handed to PyYAML whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import ScalarNode

SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_CONSTRUCTORS = yaml.constructor.SafeConstructor.yaml_constructors
_IMPLICIT = yaml.resolver.Resolver.yaml_implicit_resolvers
_WILDCARD = list(_IMPLICIT.get(None, []))
_RESOLVERS = {c: [*found, *_WILDCARD] for c, found in _IMPLICIT.items() if c is not None}
"""PyYAML's implicit resolvers of plain scalars, by first character, as it tries them."""


class _LeaveToPyYAML(Exception):
    """The document uses something this builder does not build."""


def read_document(path: Path) -> Any:
    """The file's data: JSON if it parses as JSON, else YAML (a `yaml.YAMLError` if not)."""
    data = path.read_bytes()
    if data.lstrip()[:1] in (b"{", b"["):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # YAML's flow style starts so too
    return load_yaml(data)


def load_yaml(data: bytes | str) -> Any:
    """`yaml.load(data, Loader=SAFE_LOADER)`, faster."""
    try:
        return _build(data)
    except _LeaveToPyYAML:
        return yaml.load(data, Loader=SAFE_LOADER)


def _build(data: bytes | str) -> Any:
    loader = SAFE_LOADER(data)
    constructor = yaml.constructor.SafeConstructor()
    try:
        result: Any = None
        documents = 0
        stack: list[Any] = []  # open containers; a mapping's pending key after it
        while True:
            event = loader.get_event()  # type: ignore[no-untyped-call]
            kind = type(event)
            if kind is ScalarEvent:
                value = _scalar(event, constructor)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                if event.anchor is not None or event.tag not in (None, "!"):
                    raise _LeaveToPyYAML
                stack.append({} if kind is MappingStartEvent else [])
                if kind is MappingStartEvent:
                    stack.append(_NO_KEY)
                continue
            elif kind is MappingEndEvent:
                stack.pop()  # the pending-key marker
                value = stack.pop()
            elif kind is SequenceEndEvent:
                value = stack.pop()
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _LeaveToPyYAML
                continue
            elif kind is StreamEndEvent:
                return result
            elif kind in (StreamStartEvent, DocumentEndEvent):
                continue
            elif kind is AliasEvent:
                raise _LeaveToPyYAML
            else:  # pragma: no cover - libyaml emits no other events
                raise _LeaveToPyYAML
            if not stack:
                result = value
            elif type(stack[-1]) is list:
                stack[-1].append(value)
            elif stack[-1] is _NO_KEY:
                if isinstance(value, dict | list):
                    raise _LeaveToPyYAML  # a complex key: PyYAML's rules
                stack[-1] = _Key(value)
            else:
                stack[-2][stack[-1].value] = value
                stack[-1] = _NO_KEY
    finally:
        loader.dispose()


class _Key:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


_NO_KEY = _Key(None)


def _scalar(event: ScalarEvent, constructor: yaml.constructor.SafeConstructor) -> Any:
    if event.anchor is not None or event.tag not in (None, "!"):
        raise _LeaveToPyYAML
    value = event.value
    if not event.implicit[0]:  # quoted, or a block scalar: a string
        return value
    for tag, pattern in _RESOLVERS.get(value[:1], _WILDCARD):
        if pattern.match(value):
            if tag == _STR:
                return value
            if tag == _MERGE:
                raise _LeaveToPyYAML
            return _CONSTRUCTORS[tag](constructor, ScalarNode(tag, value))
    return value
