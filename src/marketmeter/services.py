"""Opening the domain's service on a database: what the command line needs, without the
server's HTTP stack (`app` adds that)."""

from __future__ import annotations

from marketmeter.clock import Clock, SystemClock
from marketmeter.config import Settings
from marketmeter.domain.ports import Store
from marketmeter.domain.service import MeteringService
from marketmeter.store import open_store


def create_service(
    settings: Settings, store: Store | None = None, clock: Clock | None = None
) -> MeteringService:
    return MeteringService(
        store or open_store(settings.database_url),
        clock or SystemClock(),
        settings.service_settings(),
    )
