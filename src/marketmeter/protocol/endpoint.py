"""The AWS-compatible endpoint as an ASGI application.

`POST /` (any path) with `X-Amz-Target: AWSMPMeteringService.<Operation>`: the body is
read (at most 1 MB; larger → 413 without reading on), the signature verified, the JSON
decoded and validated, the domain called on a worker thread, and the answer written as
`application/x-amz-json-1.1` with `x-amzn-RequestId`. Errors are `{"__type", "message"}`
with `X-Amzn-ErrorType`; a client's mistake is never a 500, and a 500 never shows a trace.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from marketmeter import __version__, metrics
from marketmeter.domain.errors import MeteringError
from marketmeter.domain.models import AccessKey
from marketmeter.domain.ports import StoreConflict, StoreUnavailable
from marketmeter.domain.service import MeteringService
from marketmeter.protocol.authentication import Authenticator
from marketmeter.protocol.errors import (
    INTERNAL_ERROR,
    ProtocolError,
    WireError,
    entity_too_large,
    serialization_error,
    unknown_operation,
    wire_error,
)
from marketmeter.protocol.operations import WireOperation, compile_operations
from marketmeter.protocol.service_model import signing_name
from marketmeter.protocol.sigv4 import SignedRequest, SigV4Verifier
from marketmeter.protocol.validation import RequestNotReadable

log = logging.getLogger("marketmeter.endpoint")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024
CONTENT_TYPE = b"application/x-amz-json-1.1"


DISCONNECTED = "disconnected"
"""The outcome of a request whose client went away (or was cut off: `server/one_write.py`)
before its body ended: nothing answered, nothing done."""


class _ClientGone(Exception):
    pass


class _Seen:
    """What is known of a request for its log line: its id and operation, and its
    caller's account once the signature was checked."""

    __slots__ = ("account", "operation", "request_id")

    def __init__(self, request_id: str, operation: str) -> None:
        self.request_id = request_id
        self.operation = operation
        self.account: str | None = None

    def failed(self, error: WireError, detail: str = "", *, exc_info: bool = False) -> None:
        """One line per failed request: never its message, headers or body (a message may
        quote what was signed; see `server/logs.py`). A client's mistake is logged at
        INFO, the service's failure at ERROR (with `detail`)."""
        server_side = error.status >= 500
        log.log(
            logging.ERROR if server_side else logging.INFO,
            "request %s %s from %s failed: %s (HTTP %d)%s",
            self.request_id,
            self.operation,
            self.account or "-",
            error.aws_type,
            error.status,
            f": {detail}" if detail else "",
            exc_info=exc_info,
            extra={
                "request_id": self.request_id,
                "operation": self.operation,
                "account": self.account,
                "error_type": error.aws_type,
                "status": error.status,
            },
        )


class MeteringEndpoint:
    def __init__(
        self,
        service: MeteringService,
        *,
        threads: int = 8,
        max_body_bytes: int = MAX_BODY_BYTES,
        verifier: SigV4Verifier | None = None,
        stand_in: Callable[[str], AccessKey] | None = None,
    ) -> None:
        self.service = service
        self._max_body = max_body_bytes
        self._operations = compile_operations()
        self._auth = Authenticator(
            service.access_key, verifier or SigV4Verifier(signing_name()), stand_in=stand_in
        )
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="metering")
        # A store whose calls are brief local work (SQLite) runs on the event loop itself;
        # one that waits on a network (PostgreSQL) runs on the worker threads.
        self._inline = getattr(service.store, "run_inline", False)
        # A store that groups units of work (PostgreSQL) gets the metering operations'
        # units on the event loop, and runs them, grouped, on threads of its own.
        self._grouping = False
        # Request ids: this process's random UUID with a counter in its last 48 bits.
        self._request_prefix = str(uuid.uuid4())[:24]
        self._request_count = itertools.count()

    def _request_id(self) -> str:
        return f"{self._request_prefix}{next(self._request_count) & 0xFFFF_FFFF_FFFF:012x}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # the lifespan is the application's (`app.Application`)
            return
        request_id = self._request_id()
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        targets = [v for k, v in headers if k == "x-amz-target"]
        target = targets[0] if len(targets) == 1 else None
        if not targets and scope["method"] in ("GET", "HEAD"):
            await self._info(scope, send)
            return
        started = time.perf_counter()
        operation = target.rpartition(".")[2] if target in self._operations else "unknown"
        seen = _Seen(request_id, operation)
        outcome = await self._answer(scope, receive, send, headers, targets, target, seen)
        metrics.request_answered(operation, outcome, time.perf_counter() - started)

    async def _answer(  # noqa: PLR0917
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: list[tuple[str, str]],
        targets: list[str],
        target: str | None,
        seen: _Seen,
    ) -> str:
        """Answer the request; its outcome: "ok", or the error's `__type`."""
        request_id = seen.request_id
        detail, trace = "", False  # what a failure of the service's own is logged with
        try:
            if len(targets) > 1:
                raise unknown_operation(", ".join(targets))
            body = await self._read_body(headers, receive)
            controls = self.service.controls
            if controls is not None and target is not None:
                delay = controls.latency(target.rpartition(".")[2])
                if delay:
                    await asyncio.sleep(delay)
            request = SignedRequest(
                method=scope["method"],
                raw_path=scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
                query_string=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body=body,
            )
            if self._inline or (self._grouping and self._groups(target)):
                payload = await self._handle_on_loop(request, target, seen)
            else:
                loop = asyncio.get_running_loop()
                payload = await loop.run_in_executor(
                    self._executor, self._handle, request, target, seen
                )
            await _respond(send, 200, orjson.dumps(payload), request_id)
            return "ok"
        except _ClientGone:
            log.info(
                "request %s: the client went away before sending all of it",
                request_id,
                extra={"request_id": request_id, "operation": seen.operation},
            )
            return DISCONNECTED
        except ProtocolError as exc:
            error = WireError(exc.aws_type, exc.status, exc.message)
        except RequestNotReadable as exc:  # a member of the wrong JSON type, or no JSON at all
            readable = serialization_error(str(exc))
            error = WireError(readable.aws_type, 400, readable.message)
        except MeteringError as exc:
            error = wire_error(exc)
        except StoreConflict as exc:
            error = WireError("ValidationException", 400, f"The request cannot be stored: {exc}")
        except StoreUnavailable as exc:
            error, detail = INTERNAL_ERROR, f"store unavailable: {exc}"
        except Exception:
            error, detail, trace = INTERNAL_ERROR, "unexpected error", True
        seen.failed(error, detail, exc_info=trace)
        await _respond_error(send, error, request_id)
        return error.aws_type

    def _handle(self, request: SignedRequest, target: str | None, seen: _Seen) -> dict[str, Any]:
        """Runs on a worker thread: authenticate, decode, call the domain."""
        caller = self._auth.authenticate(request)
        seen.account = caller.account_id
        return self._operation(target).invoke(self.service, caller, request.body)

    async def _handle_on_loop(
        self, request: SignedRequest, target: str | None, seen: _Seen
    ) -> dict[str, Any]:
        """`_handle` on the event loop, for a store whose work is brief and local (SQLite),
        or for an operation whose claims the store groups (PostgreSQL): checks here, and
        the claims run by the store with others (group commit)."""
        caller = self._auth.authenticate(request)
        seen.account = caller.account_id
        return await self._operation(target).invoke_async(self.service, caller, request.body)

    def _groups(self, target: str | None) -> bool:
        operation = self._operations.get(target or "")
        return operation is not None and operation.grouped

    def _operation(self, target: str | None) -> WireOperation:
        operation = self._operations.get(target or "")
        if operation is None:
            raise unknown_operation(target)
        return operation

    async def _read_body(self, headers: list[tuple[str, str]], receive: Receive) -> bytes:
        length = next((v for k, v in headers if k == "content-length"), None)
        if (
            length is not None
            and length.isascii()
            and length.isdigit()
            and int(length) > self._max_body
        ):
            raise entity_too_large(self._max_body)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # before the body ended: not a request
                raise _ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise entity_too_large(self._max_body)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _info(self, scope: Scope, send: Send) -> None:
        body = orjson.dumps(
            {
                "service": "marketmeter",
                "version": __version__,
                "endpoint": "POST / with X-Amz-Target: AWSMPMeteringService.<Operation>",
            }
        )
        status = 200 if scope["path"] in ("/", "/health") else 404
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def startup(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the server's event loop, before the first request."""
        store: Any = self.service.store
        target = getattr(store, "inner", store)
        if hasattr(target, "group_commit_on"):
            target.group_commit_on(loop)
            self._grouping = True

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.service.store.close()


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    request_id: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", CONTENT_TYPE),
        (b"content-length", str(len(body)).encode()),
        (b"x-amzn-requestid", request_id.encode()),
    ]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _respond_error(send: Send, error: WireError, request_id: str) -> None:
    body = orjson.dumps({"__type": error.aws_type, "message": error.message})
    extra = [(b"x-amzn-errortype", error.aws_type.encode())]
    if error.status == 413:  # the rest of the body is not read: the connection ends here
        extra.append((b"connection", b"close"))
    await _respond(send, error.status, body, request_id, extra)
