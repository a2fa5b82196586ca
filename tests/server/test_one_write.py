"""The one-write protocol: uvicorn's httptools protocol, run as a server runs it, on a
transport that records what would reach the socket (the only thing not real here)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from marketmeter.app import create_app
from marketmeter.config import Settings
from marketmeter.server.one_write import OneWriteHttpToolsProtocol

App = Callable[[Any, Any, Any], Awaitable[None]]


class RecordingTransport(asyncio.Transport):
    """The socket's side: every write as it would be handed to the kernel."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "a write after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 40000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def exchange(app: App, *chunks: bytes) -> RecordingTransport:
    """Feed `chunks` to a connection served by `app`; the writes, once every request ran."""

    async def main() -> RecordingTransport:
        config = Config(app=app, http=OneWriteHttpToolsProtocol, lifespan="off")
        config.load()
        state = ServerState()
        protocol = OneWriteHttpToolsProtocol(
            config=config, server_state=state, app_state={}, _loop=asyncio.get_running_loop()
        )
        transport = RecordingTransport()
        protocol.connection_made(transport)
        for chunk in chunks:
            protocol.data_received(chunk)
            for _ in range(10):  # let the application run as far as it can
                await asyncio.sleep(0)
        await settle(state)
        if protocol.timeout_keep_alive_task is not None:
            protocol.timeout_keep_alive_task.cancel()
        return transport

    return asyncio.run(main())


async def settle(state: ServerState) -> None:
    for _ in range(1000):
        await asyncio.sleep(0)
        if not state.tasks:
            return
    raise AssertionError("the requests did not finish")


def head_and_body(write: bytes) -> tuple[bytes, bytes]:
    head, _, body = write.partition(b"\r\n\r\n")
    return head, body


@pytest.fixture
def endpoint(tmp_path: Path) -> Any:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'one-write.db'}"))
    yield app
    app.close()


def test_a_success_of_the_endpoint_is_one_write(endpoint: Any) -> None:
    transport = exchange(endpoint, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    [write] = transport.writes
    head, body = head_and_body(write)
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body.startswith(b'{"service":"marketmeter"')
    assert f"content-length: {len(body)}".encode() in head


def test_an_error_of_the_endpoint_is_one_write(endpoint: Any) -> None:
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    [write] = exchange(endpoint, request).writes
    head, body = head_and_body(write)
    assert head.startswith(b"HTTP/1.1 400 Bad Request")
    assert b"x-amzn-errortype: MissingAuthenticationTokenException" in head
    assert b'"__type":"MissingAuthenticationTokenException"' in body


def test_every_response_of_a_keep_alive_connection_is_one_write(endpoint: Any) -> None:
    get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    transport = exchange(endpoint, get, get, get)
    assert len(transport.writes) == 3
    assert all(head_and_body(w)[1] for w in transport.writes)
    assert not transport.closed


def test_pipelined_requests_are_answered_in_order_one_write_each() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = scope["path"].encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    transport = exchange(app, b"GET /first HTTP/1.1\r\n\r\nGET /second HTTP/1.1\r\n\r\n")
    assert [head_and_body(w)[1] for w in transport.writes] == [b"/first", b"/second"]


def test_connection_close_writes_the_response_then_closes(endpoint: Any) -> None:
    transport = exchange(endpoint, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    [write] = transport.writes
    assert b"connection: close" in head_and_body(write)[0].lower()
    assert transport.closed


def test_a_streamed_response_sends_its_head_with_the_first_chunk_then_streams() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await send({"type": "http.response.body", "body": b"two", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    first, second, last = exchange(app, b"GET / HTTP/1.1\r\n\r\n").writes
    head, body = head_and_body(first)
    assert b"transfer-encoding: chunked" in head
    assert body == b"3\r\none\r\n"
    assert second == b"3\r\ntwo\r\n"
    assert last == b"0\r\n\r\n"


def test_an_application_failing_before_its_body_gets_a_whole_500() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("boom")

    transport = exchange(app, b"GET / HTTP/1.1\r\n\r\n")
    [write] = transport.writes
    head, body = head_and_body(write)
    assert head.startswith(b"HTTP/1.1 500 Internal Server Error")
    assert body == b"Internal Server Error"


def test_expect_100_continue_is_written_before_the_response(endpoint: Any) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    transport = exchange(endpoint, head, b"{}")
    continue_, response = transport.writes
    assert continue_ == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert head_and_body(response)[0].startswith(b"HTTP/1.1 400")
