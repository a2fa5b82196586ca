"""Assembling the application: settings → store → service → ASGI endpoints and the
process's background work."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from typing import Any

from marketmeter.background import ControlsFollower
from marketmeter.clock import Clock, OffsetClock, SystemClock
from marketmeter.config import Settings
from marketmeter.delivery.endpoint import SnsEndpoint
from marketmeter.delivery.worker import Deliverer, DeliveryWorker
from marketmeter.domain.admin_token import token_hash
from marketmeter.domain.controls import ActiveControls
from marketmeter.domain.models import AccessKey
from marketmeter.domain.ports import Store
from marketmeter.health import PATHS as HEALTH_PATHS
from marketmeter.health import HealthEndpoints
from marketmeter.metrics import MetricsEndpoint
from marketmeter.protocol.endpoint import MeteringEndpoint
from marketmeter.services import create_service
from marketmeter.store import open_store
from marketmeter.store.cache import CachedStore


def create_app(
    settings: Settings,
    store: Store | None = None,
    clock: Clock | None = None,
    *,
    stand_in: Callable[[str], AccessKey] | None = None,
) -> Application:
    """A server process's application: its catalog reads cached (`CachedStore`), the
    outbox delivered, and — under `--test-controls` — the test controls obeyed.
    `stand_in`: the in-process mock's identity for unknown access keys (`Authenticator`)."""
    cached = CachedStore(
        store or open_store(settings.database_url),
        remember_unknown_keys=stand_in is not None,
        exact=settings.test_controls,  # a test server: each request sees every change before it
    )
    base_clock = clock or SystemClock()
    service_clock: Clock = base_clock
    follower = None
    if settings.test_controls:
        service_clock = OffsetClock(base_clock)
    service = create_service(settings, cached, service_clock)
    if isinstance(service_clock, OffsetClock):
        service.controls = ActiveControls()
        follower = ControlsFollower(cached, service_clock, service.controls)
        cached.on_controls_change(follower.follow)  # obeyed from the next request on
    endpoint = MeteringEndpoint(service, threads=settings.threads, stand_in=stand_in)
    admin_hash = (
        token_hash(settings.admin_token) if settings.admin_token else cached.admin_token_hash()
    )
    test_controls = settings.test_controls

    def admin() -> Asgi:
        from marketmeter.admin.app import AdminApp

        return AdminApp(service, admin_hash, test_controls=test_controls)

    def console() -> Asgi:
        from marketmeter.console.app import ConsoleApp

        return ConsoleApp(service, admin_hash, test_controls=test_controls)

    deliverer = Deliverer(cached, service_clock, settings.public_address())
    return Application(
        endpoint,
        OnFirstRequest(admin),
        OnFirstRequest(console),
        SnsEndpoint(cached, service.marketplace),
        DeliveryWorker(deliverer) if settings.deliveries else None,
        follower,
        HealthEndpoints(cached),
        MetricsEndpoint(cached.count_pending_deliveries, settings.metrics_token),
    )


Asgi = Callable[[Any, Any, Any], Awaitable[None]]


class OnFirstRequest:
    """An ASGI application built on its first request: the admin API and the console, so
    that a server none of whose requests are theirs never loads Jinja2, their routes and
    their schemas (a quicker start)."""

    def __init__(self, build: Callable[[], Asgi]) -> None:
        self._build = build
        self._app: Asgi | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:  # (on the event loop's one thread: built once)
            self._app = self._build()
        await self._app(scope, receive, send)


def app_from_environment() -> Application:
    """The factory each server worker process calls (settings come in MARKETMETER_*)."""
    app = create_app(Settings.from_environment())
    tune_garbage_collector()
    return app


class Application:
    """The ASGI application of a server process: the AWS endpoints (`POST /`), the admin
    API (`/admin/…`), the console (`/console`), the SNS side (`/sns/…`), `/healthz`,
    `/readyz` and `/metrics`, and the process's background work, started and stopped with it."""

    def __init__(  # noqa: PLR0917
        self,
        endpoint: MeteringEndpoint,
        admin: Asgi,
        console: Asgi,
        sns: SnsEndpoint,
        worker: DeliveryWorker | None,
        follower: ControlsFollower | None,
        health: HealthEndpoints,
        metrics: MetricsEndpoint,
    ) -> None:
        self.endpoint = endpoint
        self.service = endpoint.service
        self.admin = admin
        self.console = console
        self._sns = sns
        self._worker = worker
        self.follower = follower
        self._health = health
        self._metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path = scope["path"] if scope["type"] == "http" else "/"
        if path == "/":  # every AWS SDK's request (and any other scope): first, past nothing
            await self.endpoint(scope, receive, send)
        elif path.startswith("/sns/"):
            await self._sns(scope, receive, send)
        elif path.startswith("/admin/"):
            await self.admin(scope, receive, send)
        elif path == "/console" or path.startswith("/console/"):
            await self.console(scope, receive, send)
        elif path in HEALTH_PATHS:
            await self._health(scope, receive, send)
        elif path == "/metrics":
            await self._metrics(scope, receive, send)
        else:
            await self.endpoint(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.startup(asyncio.get_running_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def startup(self, loop: asyncio.AbstractEventLoop) -> None:
        self.endpoint.startup(loop)
        if self.follower is not None:
            self.follower.start()
        if self._worker is not None:
            self._worker.start()

    def close(self) -> None:
        if self._worker is not None:
            self._worker.stop()
        if self.follower is not None:
            self.follower.stop()
        self.endpoint.close()


def tune_garbage_collector() -> None:
    """For a server process. What start-up made (modules, the service model, compiled
    validators) is never garbage: frozen out of every collection. And the young generation
    is collected every 50,000 allocations, not 700: a request makes tens of short-lived
    objects, nearly all freed by reference counting, and the frequent collections — full
    ones over a growing catalog cache among them — were a third of the time and most of
    the p99 (measured with `make bench`)."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
