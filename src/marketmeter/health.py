"""`GET /healthz` and `GET /readyz` on the server's port, for load balancers, orchestrators
and a container's health check: no authentication, and nothing in the answer beyond one
word of why (the details go to the server's log).

- `/healthz`: the process answers (its event loop runs) — 200.
- `/readyz`: the database answers within `READY_TIMEOUT` seconds and holds every schema
  migration of this build — 200; else 503 with `"reason": "database"` or `"migrations"`.
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from marketmeter.asgi import Receive, Scope, Send, reply
from marketmeter.domain.ports import Store

PATHS = ("/healthz", "/readyz")
READY_TIMEOUT = 2.0
log = logging.getLogger("marketmeter.health")


class HealthEndpoints:
    def __init__(self, store: Store, timeout: float = READY_TIMEOUT) -> None:
        self._store = store
        self._timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _answer(send, 405, {"status": "error", "reason": "use GET"}, allow=True)
        elif scope["path"] == "/healthz":
            await _answer(send, 200, {"status": "ok"})
        else:
            reason = await self._not_ready()
            if reason is None:
                await _answer(send, 200, {"status": "ready"})
            else:
                await _answer(send, 503, {"status": "unavailable", "reason": reason})

    async def _not_ready(self) -> str | None:
        try:
            pending = await asyncio.wait_for(
                asyncio.to_thread(self._store.pending_migrations), self._timeout
            )
        except TimeoutError:
            log.warning("not ready: the database did not answer in %.1f s", self._timeout)
            return "database"
        except Exception as exc:  # whatever the database's driver raised: not ready
            log.warning("not ready: the database: %s", exc)
            return "database"
        if pending:
            log.warning("not ready: migrations not applied: %s", ", ".join(pending))
            return "migrations"
        return None


_NO_STORE = [(b"cache-control", b"no-store")]


async def _answer(send: Send, status: int, body: dict[str, str], *, allow: bool = False) -> None:
    headers = [*_NO_STORE, (b"allow", b"GET, HEAD")] if allow else _NO_STORE
    await reply(send, status, orjson.dumps(body), b"application/json", headers)
