"""The admin API's OpenAPI 3.1 document, generated from `ROUTES` and the msgspec types
its handlers decode and encode (msgspec writes JSON Schema 2020-12, OpenAPI 3.1's own)."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from marketmeter import __version__
from marketmeter.admin.routes import ROUTES, Route
from marketmeter.admin.schemas import ErrorDocument

_REF = "#/components/schemas/{name}"
_PARAM = re.compile(r"{([^}]+)}")

_STATUS_TEXT = {
    400: "The request cannot be read (malformed JSON, a bad query or path parameter)",
    401: "No token, or a wrong one",
    404: "Not found",
    409: "Clashes with what exists",
    422: "Refused: the body or the change breaks a rule",
}


def openapi_document() -> dict[str, Any]:
    types: list[Any] = [ErrorDocument]
    for route in ROUTES:
        types += [t for t in (route.answer, route.body, route.query) if t is not None]
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    schema_of = dict(zip(map(_key, types), schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault("/admin/v1" + route.path, {})[route.method.lower()] = _operation(
            route, schema_of, components
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "marketmeter admin API",
            "version": __version__,
            "description": "The catalog, subscriptions, records, usage reports, notifications "
            "and test controls of a marketmeter server. Every route needs the admin token "
            "as `Authorization: Bearer TOKEN`.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _key(t: Any) -> str:
    return repr(t)


def _operation(
    route: Route, schema_of: dict[str, Any], components: dict[str, Any]
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "tags": [route.tag],
    }
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(route.path)
    ]
    if route.query is not None:
        query_schema = components[route.query.__name__]
        required = set(query_schema.get("required", ()))
        for name, prop in query_schema["properties"].items():
            parameter = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if "description" in prop:
                parameter["description"] = prop["description"]
            parameters.append(parameter)
    if parameters:
        op["parameters"] = parameters
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema_of[_key(route.body)]}},
        }
    error = {
        "description": "",
        "content": {"application/json": {"schema": schema_of[_key(ErrorDocument)]}},
    }
    responses: dict[str, Any] = {}
    if route.answer is None:
        responses["204"] = {"description": "Done"}
    else:
        content = {"application/json": {"schema": schema_of[_key(route.answer)]}}
        if route.stream:
            content[route.stream] = {"schema": {"type": "string"}}
        responses[str(route.status)] = {"description": "OK", "content": content}
    statuses = {401, *route.errors}
    if route.body is not None:
        statuses |= {400, 422}
    if route.query is not None:
        statuses.add(400)
    for status in sorted(statuses):
        responses[str(status)] = {**error, "description": _STATUS_TEXT[status]}
    op["responses"] = responses
    return op
