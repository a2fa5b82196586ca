"""Shared fixtures: a fixed clock, a real SQLite store in a temporary file, the service."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from marketmeter.clock import FixedClock
from marketmeter.domain.catalog_file import parse_catalog
from marketmeter.domain.service import MeteringService, ServiceSettings
from marketmeter.store.sqlite import SqliteStore
from tests.factories import make_catalog
from tests.postgres import TemporaryPostgres, find_bindir

pytest_plugins = ["pytester"]  # tests/testing runs seller projects with the plugin

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


# -- PostgreSQL ---------------------------------------------------------------------------

_PG_SKIP = "PostgreSQL is not installed (no initdb): PostgreSQL tests skipped"


@pytest.fixture(scope="session")
def postgres() -> Iterator[TemporaryPostgres]:
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(_PG_SKIP)
    server = TemporaryPostgres(bindir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    pg: TemporaryPostgres = request.getfixturevalue("postgres")
    return pg.create_database()


def pytest_report_header(config: pytest.Config) -> str:
    bindir = find_bindir()
    if bindir is None:
        return "postgresql: not installed — the PostgreSQL tests will be SKIPPED"
    return f"postgresql: {bindir} — the PostgreSQL tests will run"
