"""The marketplace in-process: the same ASGI application and domain as `marketmeter
serve`, on a fresh SQLite file of its own, answering botocore's requests without a socket.

Start-up is cheap because the expensive part is done once per process and catalog: a
template database (migrated, the catalog applied — signing keys of container products
included) is kept in a temporary directory, and each activation starts from a copy of it.
A request runs in the thread that makes it, on an event loop of that thread's own (the
store commits each call by itself: no group commit); from a thread that runs an event loop
already, it is handed to a loop thread of the mock's and waited for.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import shutil
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict

from marketmeter.app import Application, create_app
from marketmeter.catalog_source import CatalogSource, load_catalog
from marketmeter.config import Settings
from marketmeter.domain.models import AccessKey, Catalog
from marketmeter.services import create_service
from marketmeter.store import open_store
from marketmeter.store.sqlite_rollups import rollups_path

DEFAULT_ACCOUNT = "123456789012"
"""The account unknown credentials act as when the catalog has no single seller (moto's
default account)."""

T = TypeVar("T")
_templates: dict[str, Path] = {}
_templates_lock = threading.Lock()


class InProcessMarketplace:
    """One activation: its database, its application, its event loop."""

    def __init__(
        self,
        catalog: CatalogSource = None,
        *,
        any_credentials: bool = True,
        account: str | None = None,
    ) -> None:
        parsed, template = _template(catalog)
        self.directory = Path(tempfile.mkdtemp(prefix="marketmeter-mock-"))
        # Removed by `close`; else when this is collected, or at the latest when the
        # process exits (a test that never closed it).
        self._remove_directory = weakref.finalize(self, shutil.rmtree, self.directory, True)
        database = self.directory / "marketplace.db"
        shutil.copyfile(template, database)
        # with its usage rollups (of the same records: nothing to sum when the store opens)
        shutil.copyfile(rollups_path(str(template)), rollups_path(str(database)))
        self.database_url = f"sqlite:///{database}?synchronous=OFF"  # thrown away after
        sellers = {p.seller_account_id for p in parsed.products}
        self.account = account or (sellers.pop() if len(sellers) == 1 else DEFAULT_ACCOUNT)
        """The account that access keys the catalog does not know act as."""
        settings = Settings(
            database_url=self.database_url, test_controls=True, deliveries=False, threads=4
        )
        self.app: Application = create_app(
            settings,
            open_store(self.database_url),
            stand_in=self._stand_in if any_credentials else None,
        )
        self.service = self.app.service
        self.follow_controls()
        self._loops = threading.local()
        self._all_loops: list[asyncio.AbstractEventLoop] = []
        self._loops_lock = threading.Lock()
        self._helper: tuple[asyncio.AbstractEventLoop, threading.Thread] | None = None

    def _stand_in(self, access_key_id: str) -> AccessKey:
        return AccessKey(access_key_id=access_key_id, secret_access_key="", account_id=self.account)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run the coroutine to its end from this thread."""
        if asyncio_running():
            return asyncio.run_coroutine_threadsafe(coroutine, self._helper_loop()).result()
        loop: asyncio.AbstractEventLoop | None = getattr(self._loops, "loop", None)
        if loop is None:
            loop = self._loops.loop = asyncio.new_event_loop()
            with self._loops_lock:
                self._all_loops.append(loop)
        return loop.run_until_complete(coroutine)

    def _helper_loop(self) -> asyncio.AbstractEventLoop:
        with self._loops_lock:
            if self._helper is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="marketmeter-mock", daemon=True
                )
                thread.start()
                self._helper = (loop, thread)
            return self._helper[0]

    def follow_controls(self) -> None:
        """Obey the test controls as stored, now (the handle changed them)."""
        if self.app.follower is not None:
            self.app.follower.follow()

    # -- answering botocore ------------------------------------------------------------

    def respond(self, request: AWSPreparedRequest) -> AWSResponse:
        parts = urlsplit(request.url)
        body = request.body
        if body is None:
            body = b""
        elif isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes | bytearray):
            body = body.read()
        headers = [
            (name.lower().encode("latin-1"), _header_bytes(value))
            for name, value in request.headers.items()
        ]
        if not any(name == b"host" for name, _ in headers):  # HTTP's client adds it on send
            headers.append((b"host", parts.netloc.encode("latin-1")))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": parts.scheme,
            "path": parts.path or "/",
            "raw_path": (parts.path or "/").encode("latin-1"),
            "query_string": parts.query.encode("latin-1"),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 0),
            "server": (parts.hostname or "", parts.port or 443),
        }
        status, response_headers, content = self._run(self._call(scope, bytes(body)))
        return AWSResponse(request.url, status, HeadersDict(response_headers), _Raw(content))

    async def _call(self, scope: dict[str, Any], body: bytes) -> tuple[int, dict[str, str], bytes]:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 500
        headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def send(message: Mapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    headers[name.decode("latin-1")] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, headers, b"".join(chunks)

    # -- the end -----------------------------------------------------------------------

    def close(self) -> None:
        try:
            self.app.close()
        finally:
            with self._loops_lock:
                loops, self._all_loops = self._all_loops, []
                helper, self._helper = self._helper, None
            if helper is not None:
                helper[0].call_soon_threadsafe(helper[0].stop)
                helper[1].join(timeout=5)
                helper[0].close()
            for loop in loops:
                if not loop.is_running():  # a loop of a thread still inside a call: left
                    loop.close()
            self._remove_directory()


class _Raw:
    """What botocore reads a response's body from."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, *_: Any, **__: Any) -> Any:
        yield self._content


def asyncio_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _header_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


# -- template databases ------------------------------------------------------------------


def _template(source: CatalogSource) -> tuple[Catalog, Path]:
    """The checked catalog, and a database file with it applied (made once per catalog
    and process)."""
    key = _catalog_key(source)
    parsed = load_catalog(source)
    with _templates_lock:
        found = _templates.get(key)
        if found is not None:
            return parsed, found
        path = Path(tempfile.mkdtemp(prefix="marketmeter-template-")) / "template.db"
        atexit.register(shutil.rmtree, path.parent, True)  # kept for the process's life
        store = open_store(f"sqlite:///{path}")
        try:
            create_service(Settings(database_url=f"sqlite:///{path}"), store).apply_catalog(parsed)
        finally:
            store.close()
        for file in (path, rollups_path(str(path))):
            with sqlite3.connect(file) as conn:  # everything in the main file, none in the WAL
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
        _templates[key] = path
        return parsed, path


def _catalog_key(source: CatalogSource) -> str:
    if source is None:
        return "empty"
    if isinstance(source, Mapping):
        return (
            "map:"
            + hashlib.sha256(
                orjson.dumps(source, option=orjson.OPT_SORT_KEYS, default=str)
            ).hexdigest()
        )
    path = Path(source).resolve()
    try:
        stat = path.stat()
    except OSError:
        return f"file:{path}"  # load_catalog says what is wrong with it
    return f"file:{path}:{stat.st_mtime_ns}:{stat.st_size}"
