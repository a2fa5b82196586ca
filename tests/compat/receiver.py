"""A seller's endpoint, for real: an HTTP server on a free port in the test process that
records every request (fulfillment POSTs, SNS messages, events) and, if asked, confirms SNS
subscriptions by GETting their SubscribeURL, as a seller's handler does."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, *, confirm: bool = True, status: int = 200) -> None:
        self.received: list[Received] = []
        self.confirm = confirm
        self.status = status
        self.redirect: str | None = None
        self.delay = 0.0  # seconds before answering: a receiver that hangs
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._lock:
                    receiver.received.append(got)
                if receiver.confirm and got.headers.get("x-amz-sns-message-type") == (
                    "SubscriptionConfirmation"
                ):
                    url = got.json()["SubscribeURL"]
                    threading.Thread(target=lambda: urllib.request.urlopen(url).read()).start()
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(302 if receiver.redirect else receiver.status)
                if receiver.redirect:
                    self.send_header("Location", receiver.redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(
        self,
        path: str,
        count: int,
        timeout: float = 10.0,
        where: Callable[[Received], bool] = lambda r: True,
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.at(path) if where(r)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
