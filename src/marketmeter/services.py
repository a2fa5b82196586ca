"""Opening the domain's service on a database: what the command line needs, without the
server's HTTP stack (`app` adds that)."""

from __future__ import annotations

from marketmeter.clock import Clock, OffsetClock, SystemClock
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


def marketplace_clock(store: Store) -> OffsetClock:
    """The marketplace's clock as the test controls kept in the database set it (moved by
    `clock set/advance`; the real time when never moved): what a change made from outside
    a server — a command, a test's handle — is stamped with, so that it agrees with a
    server that obeys the controls."""
    return OffsetClock(SystemClock(), store.test_controls().clock_offset)
