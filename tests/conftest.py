"""Shared fixtures: a fixed clock, a real SQLite store in a temporary file, the service."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from marketmeter.clock import FixedClock
from marketmeter.domain.catalog import parse_catalog
from marketmeter.domain.service import MeteringService, ServiceSettings
from marketmeter.store.sqlite import SqliteStore
from tests.factories import make_catalog

NOW = datetime(2026, 3, 15, 12, 30, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "marketmeter.db")
    yield s
    s.close()


@pytest.fixture
def service(store: SqliteStore, clock: FixedClock) -> MeteringService:
    svc = MeteringService(store, clock, ServiceSettings())
    svc.apply_catalog(parse_catalog(make_catalog()))
    return svc
