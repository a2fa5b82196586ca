"""The admin API as an ASGI application (Starlette), mounted by the server at `/admin/`:
every request needs the bearer token first; then the route's query and body are decoded
into its types, its handler runs on a worker thread, and the answer is encoded — or the
error, in the one shape of `admin.errors`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Match
from starlette.routing import Route as StarletteRoute
from starlette.types import Receive, Scope, Send

from marketmeter.admin.errors import ApiError, from_exception, invalid
from marketmeter.admin.openapi import openapi_document
from marketmeter.admin.routes import ROUTES, Call, Route
from marketmeter.domain.admin_token import token_matches
from marketmeter.domain.service import MeteringService

PREFIX = "/admin/v1"
JSON = "application/json"
MAX_BODY_BYTES = 16 * 1024 * 1024

_encoder = msgspec.json.Encoder()


def json_response(value: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(value), status, media_type=JSON)


def error_response(error: ApiError) -> Response:
    response = json_response(error.document(), error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="marketmeter admin"'
    return response


class AdminApp:
    """`token_hash`: the SHA-256 of the one token admitted (None: none is — every request
    is refused, saying so)."""

    def __init__(
        self, service: MeteringService, token_hash: str | None, *, test_controls: bool = False
    ) -> None:
        self.service = service
        self._token_hash = token_hash
        self._test_controls = test_controls
        routes = [
            StarletteRoute(PREFIX + "/openapi.json", self._openapi, methods=["GET"]),
            *(
                StarletteRoute(PREFIX + r.path, self._endpoint(r), methods=[r.method])
                for r in ROUTES
            ),
        ]
        self._routes = routes
        self._document: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        refusal = self._refusal(Request(scope))
        if refusal is not None:
            await error_response(refusal)(scope, receive, send)
            return
        allowed_elsewhere = False
        for route in self._routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            allowed_elsewhere |= match is Match.PARTIAL  # the path, with another method
        request = Request(scope)
        error = ApiError(404, "not_found", f"no route {request.method} {request.url.path}")
        if allowed_elsewhere:
            error = ApiError(
                405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}"
            )
        await error_response(error)(scope, receive, send)

    def _refusal(self, request: Request) -> ApiError | None:
        if self._token_hash is None:
            return ApiError(401, "unauthorized", "no admin token is set on this server")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return ApiError(
                401, "unauthorized", "send the admin token: Authorization: Bearer TOKEN"
            )
        if not token_matches(self._token_hash, token.strip()):
            return ApiError(401, "unauthorized", "the admin token is wrong")
        return None

    async def _openapi(self, request: Request) -> Response:
        if self._document is None:
            self._document = _encoder.encode(openapi_document())
        return Response(self._document, media_type=JSON)

    def _endpoint(self, route: Route) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                call = Call(
                    self.service,
                    _path_params(request),
                    _query(route, request),
                    await _body(route, request),
                    self._test_controls,
                )
                answer = await run_in_threadpool(route.handler, call)
            except Exception as exc:  # each becomes the one error shape
                return error_response(from_exception(exc))
            if answer is None and route.answer is None:
                return Response(status_code=204)
            if isinstance(answer, Iterator):
                return StreamingResponse(
                    iterate_in_threadpool(answer), media_type=route.stream or JSON
                )
            return json_response(answer, route.status)

        endpoint.__name__ = route.handler.__name__
        return endpoint


def _path_params(request: Request) -> dict[str, str]:
    # No product, account, id… holds a NUL (and PostgreSQL's text cannot): nothing is there.
    for name, value in request.path_params.items():
        if "\x00" in value:
            raise ApiError(404, "not_found", f"no {name} holds a NUL character", {"field": name})
    return dict(request.path_params)


def _query(route: Route, request: Request) -> Any:
    params = request.query_params
    for name, value in params.multi_items():
        if "\x00" in value:  # (a filter no stored value can match, and PostgreSQL refuses)
            raise ApiError(
                400,
                "invalid_query",
                f"query parameter {name!r} holds a NUL character",
                {"field": name},
            )
    if route.query is None:
        if params:
            name = next(iter(params))
            raise ApiError(
                400, "invalid_query", f"unknown query parameter {name!r}", {"field": name}
            )
        return None
    for name in params:
        if len(params.getlist(name)) > 1:
            raise ApiError(
                400, "invalid_query", f"query parameter {name!r} given twice", {"field": name}
            )
    try:
        return msgspec.convert(dict(params), route.query, strict=False)
    except msgspec.ValidationError as exc:
        raise _query_error(exc) from None


def _query_error(exc: msgspec.ValidationError) -> ApiError:
    text = str(exc)
    if text.startswith("Object contains unknown field"):
        name = text.split("`")[1]
        return ApiError(400, "invalid_query", f"unknown query parameter {name!r}", {"field": name})
    error = invalid(exc, 400, "invalid_query", "query parameter")
    error.message = error.message.replace("query parameter field", "query parameter")
    return error


async def _body(route: Route, request: Request) -> Any:
    if route.body is None:
        return None
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"a body of at most {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        raise ApiError(400, "malformed_json", "the request needs a JSON body")
    try:
        decoded = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ApiError(400, "malformed_json", f"the body is not JSON: {exc}") from None
    try:
        return msgspec.convert(decoded, route.body)
    except msgspec.ValidationError as exc:
        raise invalid(exc, 422, "invalid_body", "body") from None
