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

It also gives a client a deadline for each request it sends (`MARKETMETER_REQUEST_TIMEOUT`
seconds, 10 by default): one for its headers — from the connection's start, or from the
request's first byte — and one more for its body. A client that sends either more slowly
(slowloris), or opens a connection and sends nothing, is disconnected then; uvicorn has
no such deadline (its keep-alive timeout is reset by every byte that comes). While the
application works on a request, no deadline runs. The deadlines are times kept on each
connection and checked by one sweep of the process's connections every half second (or
an eighth of the timeout, if shorter), not a timer a request: arming and cancelling two
timers for each request cost more than the rest of the protocol's work.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from functools import cache
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

Message = Any


REQUEST_TIMEOUT_VARIABLE = "MARKETMETER_REQUEST_TIMEOUT"
LINGER_SECONDS = 2.0
"""After a 413, what is still read and dropped at most (time, bytes) before closing."""


@cache
def request_timeout() -> float:
    """Seconds a client has for a request's headers, and again for its body."""
    return float(os.environ.get(REQUEST_TIMEOUT_VARIABLE) or 10)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """Pass as `uvicorn.run(..., http=OneWriteHttpToolsProtocol)` (or its import path)."""

    _due: float | None = None  # the event loop's time past which the connection is closed
    _lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _Sweep.of(self.loop).watch(self)
        self._arm()  # the first request's headers

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        _Sweep.of(self.loop).forget(self)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # this request's headers, from its first byte

    def on_message_complete(self) -> None:
        self._disarm()  # all of it came: the application's turn
        super().on_message_complete()

    def _arm(self, seconds: float | None = None) -> None:
        self._due = self.loop.time() + (request_timeout() if seconds is None else seconds)

    def _disarm(self) -> None:
        self._due = None

    def linger(self) -> None:
        """End the connection after answering a request whose body it did not read (413),
        so that the client reads the answer: closed at once, the unread body would make
        the kernel reset the connection, and the client lose the answer with it. Instead
        the server says it is done sending (FIN), reads and drops what still comes for up
        to `LINGER_SECONDS`, then closes (as nginx's lingering close does). Bounded by
        time only: a cap on the bytes let a client sending fast (an SDK's 5 MB body, an
        endless one) be reset before it had read the 413."""
        transport = self.transport
        if transport.is_closing() or self._lingering:
            return
        self._lingering = True
        self._disarm()
        if transport.can_write_eof():
            transport.write_eof()
        self.flow.resume_reading()
        self._arm(LINGER_SECONDS)  # then `_too_slow` closes it

    def data_received(self, data: bytes) -> None:
        if self._lingering:  # the rest of a refused body, or anything after it: dropped
            return
        super().data_received(data)

    def _too_slow(self) -> None:
        self._due = None
        if not self.transport.is_closing():
            self.transport.close()  # (a request cut off: its application sees a disconnect)

    def on_headers_complete(self) -> None:
        previous = self.cycle
        self._arm()  # its body, if one comes (`on_message_complete` disarms)
        super().on_headers_complete()
        if self.cycle is not previous:
            # uvicorn makes the cycle by its own class's name; the request's task is
            # created but has not run yet, so it finds the one-write `send`. (A subclass,
            # not a closure kept on the cycle: that would make each cycle a reference
            # cycle, left for the garbage collector.)
            self.cycle.__class__ = _OneWriteCycle


class _Sweep:
    """One event loop's connections and the timer that checks their deadlines."""

    _loops: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweep]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._watched: set[OneWriteHttpToolsProtocol] = set()
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Sweep:
        sweep = cls._loops.get(loop)
        if sweep is None:
            sweep = cls._loops[loop] = cls(loop)
        return sweep

    def watch(self, protocol: OneWriteHttpToolsProtocol) -> None:
        self._watched.add(protocol)
        if self._timer is None:
            self._timer = self._loop.call_later(_interval(), self._run)

    def forget(self, protocol: OneWriteHttpToolsProtocol) -> None:
        self._watched.discard(protocol)

    def _run(self) -> None:
        now = self._loop.time()
        for protocol in [p for p in self._watched if p._due is not None and p._due <= now]:
            protocol._too_slow()
        self._timer = self._loop.call_later(_interval(), self._run) if self._watched else None


def _interval() -> float:
    return min(0.5, request_timeout() / 8)


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
        # A response that ends the connection before its request's body ended (a 413)
        # closes it gently: see `OneWriteHttpToolsProtocol.linger`.
        protocol = self.on_response.__self__ if self.more_body else None  # type: ignore[attr-defined]
        gathered = _GatheringTransport(transport, protocol)
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

    def __init__(
        self, transport: asyncio.Transport, lingering: OneWriteHttpToolsProtocol | None = None
    ) -> None:
        self._transport = transport
        self._parts: list[bytes] = []
        self._lingering = lingering

    def write(self, data: bytes) -> None:
        self._parts.append(data)

    def flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts)
            self._parts.clear()
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        if self._lingering is not None:
            self._lingering.linger()
        else:
            self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
