"""uvicorn's httptools protocol, writing each response's head and body in one write.

uvicorn writes a response in two writes: the status line and headers when the application
sends `http.response.start`, the body at `http.response.body`. Most clients do not care.
The AWS SDK for Go v2 before January 2025 does: it closes the request body as soon as
the headers arrive, and Go's transport, sometimes still finishing that request, then closes
the connection before the response body is read — up to 1 answer in 100 lost
(aws/aws-sdk-go-v2 #1825, #2737). AWS answers in one piece, and so does this protocol:
the start message is held until the first body message, and both are written together.

A response that streams (`more_body`) gets its head with its first chunk; the chunks
after it go out as they come, untouched. `Content-Length` and every other rule of
uvicorn's own `send` still apply: the held messages are passed to it, only its writes are
gathered. Nothing here depends on the application.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

Message = Any


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """Pass as `uvicorn.run(..., http=OneWriteHttpToolsProtocol)` (or its import path)."""

    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        if self.cycle is not previous:
            # uvicorn makes the cycle by its own class's name; the request's task is
            # created but has not run yet, so it finds the one-write `send`. (A subclass,
            # not a closure kept on the cycle: that would make each cycle a reference
            # cycle, left for the garbage collector.)
            self.cycle.__class__ = _OneWriteCycle


class _OneWriteCycle(RequestResponseCycle):
    _held: Message | None = None
    """The start message, until the first body message comes."""

    async def send(self, message: Message) -> None:
        held = self._held
        if message["type"] == "http.response.start" and not self.response_started:
            self._held = message  # a later start (uvicorn's own 500) replaces an unsent one
            return
        if held is None or message["type"] != "http.response.body":
            await super().send(message)
            return
        self._held = None
        transport = self.transport
        gathered = _GatheringTransport(transport)
        self.transport = gathered  # type: ignore[assignment]
        try:
            await super().send(held)
            await super().send(message)
        finally:
            self.transport = transport
            gathered.flush()


class _GatheringTransport:
    """Stands in for the connection's transport while a response's head and first body
    are written: the writes are joined into one; a close (a response to a request that
    ends the connection) writes them first."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._parts.append(data)

    def flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts)
            self._parts.clear()
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
