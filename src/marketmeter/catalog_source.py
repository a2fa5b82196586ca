"""A catalog from where a user keeps it — a YAML or JSON file, or a mapping in Python —
checked, with every mistake named by file, line and field
(`catalog.yaml:7: products[0].type: one of saas, ami, container, not 'nope'`). The command
line and the testing kit read catalogs through here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from marketmeter.documents import SAFE_LOADER, read_document
from marketmeter.domain.catalog_file import parse_catalog
from marketmeter.domain.errors import CatalogError
from marketmeter.domain.models import Catalog

CatalogSource = str | Path | Mapping[str, Any] | None
_PLACE = re.compile(r"^(?P<path>[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\]|\.[A-Za-z_][A-Za-z0-9_]*)*): ")
_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


class CatalogFileError(CatalogError):
    """A catalog that cannot be used, with the places of its mistakes."""


def load_catalog(source: CatalogSource) -> Catalog:
    """The checked catalog of a file (a path), of a mapping, or an empty one (None)."""
    if source is None:
        return parse_catalog({})
    if isinstance(source, Mapping):
        return parse_catalog(source)
    path = Path(source)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogFileError(f"{path}: cannot read the catalog: {exc.strerror}") from None
    try:
        document = read_document(path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogFileError(f"{where}: not valid YAML or JSON: {problem}") from None
    try:
        return parse_catalog(document)
    except CatalogError as exc:
        raise CatalogFileError(placed(str(exc), path, data)) from None


def placed(message: str, path: Path, data: bytes) -> str:
    """The checker's message with each mistake's line in the file put before it."""
    lines = message.split("\n")
    out = [f"{path}: {lines[0]}" if len(lines) > 1 else ""]
    for line in lines if len(lines) == 1 else lines[1:]:
        text = line.strip()
        found = _PLACE.match(text)
        number = line_of(data, found.group("path")) if found else None
        out.append(f"  {path}:{number}: {text}" if number else f"  {path}: {text}")
    if len(lines) == 1:
        return out[1].strip()
    return "\n".join(out)


def line_of(data: bytes, place: str) -> int | None:
    """The line (from 1) of the field `place` names (e.g. `products[2].type`): its key's
    line, or the line of the nearest enclosing entry that exists."""
    try:
        node: Any = yaml.compose(data, Loader=SAFE_LOADER)
    except yaml.YAMLError:
        return None
    line = None
    for name, index in _STEP.findall(place):
        if node is None:
            break
        if name and isinstance(node, yaml.MappingNode):
            pair = next((p for p in node.value if p[0].value == name), None)
            if pair is None:
                break
            line = pair[0].start_mark.line + 1
            node = pair[1]
        elif index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            node = node.value[int(index)]
            line = node.start_mark.line + 1
        else:
            break
    return line
