"""Assembling the application: settings → store → service → ASGI endpoint."""

from __future__ import annotations

from marketmeter.clock import Clock, SystemClock
from marketmeter.config import Settings
from marketmeter.domain.service import MeteringService
from marketmeter.protocol.endpoint import MeteringEndpoint
from marketmeter.store import open_store
from marketmeter.store.base import Store
from marketmeter.store.cache import CachedStore


def create_service(
    settings: Settings, store: Store | None = None, clock: Clock | None = None
) -> MeteringService:
    return MeteringService(
        store or open_store(settings.database_url),
        clock or SystemClock(),
        settings.service_settings(),
    )


def create_app(
    settings: Settings, store: Store | None = None, clock: Clock | None = None
) -> MeteringEndpoint:
    """The server: its catalog reads are cached (`CachedStore`)."""
    cached = CachedStore(store or open_store(settings.database_url))
    return MeteringEndpoint(create_service(settings, cached, clock), threads=settings.threads)


def app_from_environment() -> MeteringEndpoint:
    """The factory each server worker process calls (settings come in MARKETMETER_*)."""
    return create_app(Settings.from_environment())
