"""marketmeter's pytest plugin, installed with the package (the `pytest11` entry point) and
inert unless a test asks for one of its fixtures:

- `marketplace`: the in-process mock (`mock_marketplace`), fresh for each test;
- `marketmeter_server`: a real server for code that goes over HTTP, started once per
  session (per xdist worker) and reset to the catalog before each test that uses it;
- `marketmeter_catalog`: the catalog both start from — the `--marketmeter-catalog` option,
  the `marketmeter_catalog` ini setting, or none; override the fixture to give another.

Importing it registers the botocore hook (`testing.hook`), so that clients made before a
test's mock is active are served by it too; the hook does nothing while no mock is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from marketmeter.testing import hook  # noqa: F401 - registers the botocore hook early


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("marketmeter", "marketmeter (AWS Marketplace metering)")
    group.addoption(
        "--marketmeter-catalog",
        default=None,
        help="Catalog file (YAML or JSON) of the marketplace and marketmeter_server fixtures.",
    )
    group.addoption(
        "--marketmeter-database",
        default=None,
        help="Database of the marketmeter_server fixture, e.g. postgresql://user@host/db "
        "(emptied at start); default: a temporary SQLite file.",
    )
    parser.addini(
        "marketmeter_catalog",
        "Catalog file of the marketplace fixtures, relative to the ini file.",
        default="",
    )


@pytest.fixture(scope="session")
def marketmeter_catalog(pytestconfig: pytest.Config) -> Any:
    """The catalog (a path, a mapping, or None) the fixtures start from."""
    option = pytestconfig.getoption("marketmeter_catalog")
    if option:
        return Path(option).resolve()
    ini = pytestconfig.getini("marketmeter_catalog")
    if ini:
        base = pytestconfig.inipath.parent if pytestconfig.inipath else pytestconfig.rootpath
        return (base / str(ini)).resolve()
    return None


@pytest.fixture
def marketplace(marketmeter_catalog: Any) -> Iterator[Any]:
    """An in-process marketplace for this test: boto3 reaches it with no endpoint_url."""
    from marketmeter.testing.mock import mock_marketplace

    with mock_marketplace(marketmeter_catalog) as handle:
        yield handle


@pytest.fixture(scope="session")
def _marketmeter_server_process(
    marketmeter_catalog: Any, pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    from marketmeter.testing.server import MarketmeterServer

    server = MarketmeterServer(
        marketmeter_catalog,
        database_url=pytestconfig.getoption("marketmeter_database"),
        directory=tmp_path_factory.mktemp("marketmeter-server"),
    )
    with server:
        yield server


@pytest.fixture
def marketmeter_server(_marketmeter_server_process: Any) -> Any:
    """A real `marketmeter serve --test-controls` (`.endpoint_url`, `.credentials()`,
    `.environment()`, `.client()`, `.handle`), back to the catalog alone for this test."""
    _marketmeter_server_process.reset()
    return _marketmeter_server_process
