"""The admin API's one error shape, `{"error": {"code", "message", "details"}}`, and the
status of each kind of mistake: 400 (a request that cannot be read: malformed JSON, bad
query parameters), 401 (no or a wrong token), 404, 409 (clashes with what exists), 422 (a
body or change the rules refuse), 503 (the database cannot be reached)."""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec

from marketmeter.domain.errors import Conflict, MeteringError, NotFound
from marketmeter.domain.ports import StoreConflict, StoreUnavailable

log = logging.getLogger("marketmeter.admin")

_FIELD = re.compile(r" - at `\$\.?([^`]*)`$")


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    def document(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def invalid(exc: msgspec.ValidationError, status: int, code: str, where: str) -> ApiError:
    """A msgspec validation error, its field named in the message and the details."""
    text = str(exc)
    found = _FIELD.search(text)
    field = found.group(1) if found else None
    problem = _FIELD.sub("", text)
    if field:
        return ApiError(status, code, f"{where} field {field!r}: {problem}", {"field": field})
    return ApiError(status, code, f"{where}: {problem}")


def from_exception(exc: Exception) -> ApiError:
    """What a handler's exception means to the client."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, NotFound):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, Conflict | StoreConflict):
        return ApiError(409, "conflict", str(exc))
    if isinstance(exc, MeteringError):
        return ApiError(422, "rejected", str(exc))
    if isinstance(exc, StoreUnavailable):
        return ApiError(503, "unavailable", str(exc))
    log.exception("admin API: unexpected error")
    return ApiError(500, "internal", "an internal error; the server's log has the details")
