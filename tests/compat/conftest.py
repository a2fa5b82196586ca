"""The compatibility suite's servers: real `marketmeter serve` processes, real boto3.

One server per test session (per xdist worker) serves the main catalog; tests that need
another configuration (throttling) start their own. Each test takes fresh customers and
buyer keys (`fresh`), so tests sharing the server never meet in a metering slot.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compat.node import Node, node_with_packages
from tests.compat.server import SESSION_TOKENS, Server, free_port, marketmeter
from tests.factories import BUYER, KEYS, SAAS, SELLER, make_catalog
from tests.postgres import TemporaryPostgres, find_bindir

POOL = 1000  # customers and buyer keys available to hand out

SESSION_TOKENS.update(
    {"session": "FwoGZXIvYXdzEXAMPLEsessiontoken", "expired": "FwoGZXIvYXdzEXPIREDtoken"}
)


def compat_keys() -> dict[str, tuple[str, str, str]]:
    keys = dict(KEYS)
    keys["session"] = ("ASIASESSION000000001", "session-secret-00000000000000000000001", BUYER)
    keys["expired"] = ("ASIAEXPIRED000000001", "expired-secret-00000000000000000000001", BUYER)
    keys["pinned"] = ("AKIAPINNEDUSEAST0001", "pinned-secret-000000000000000000000001", BUYER)
    keys["ec2"] = ("AKIAEC2INSTANCE00001", "ec2-secret-000000000000000000000000001", BUYER)
    keys["limited"] = ("AKIALIMITED000000001", "limited-secret-0000000000000000000001", SELLER)
    for i in range(POOL):
        keys[f"buyer{i}"] = (f"AKIAPOOLBUYER{i:07d}", f"pool-buyer-secret-{i:022d}", BUYER)
    return keys


def pool_account(i: int) -> str:
    return f"5{i:011d}"


def compat_catalog(keys: dict[str, tuple[str, str, str]]) -> dict[str, Any]:
    catalog = make_catalog()
    buyer = next(a for a in catalog["accounts"] if a["account_id"] == BUYER)
    seller = next(a for a in catalog["accounts"] if a["account_id"] == SELLER)
    extra = {
        "session": {"session_token": SESSION_TOKENS["session"]},
        "expired": {
            "session_token": SESSION_TOKENS["expired"],
            "expires_at": "2020-01-01T00:00:00Z",
        },
        "pinned": {"region": "us-east-1"},
        "ec2": {"platform": "ec2"},
    }
    for name, fields in extra.items():
        key_id, secret, _ = keys[name]
        buyer["access_keys"].append(
            {"access_key_id": key_id, "secret_access_key": secret, **fields}
        )
    for i in range(POOL):
        key_id, secret, _ = keys[f"buyer{i}"]
        buyer["access_keys"].append({"access_key_id": key_id, "secret_access_key": secret})
    key_id, secret, _ = keys["limited"]
    seller["access_keys"].append(
        {"access_key_id": key_id, "secret_access_key": secret, "actions": ["ResolveCustomer"]}
    )
    for i in range(POOL):
        catalog["subscriptions"].append(
            {
                "product_code": SAAS,
                "customer_aws_account_id": pool_account(i),
                "customer_identifier": f"poolcust{i:05d}",
            }
        )
    return catalog


def start_server(
    database_url: str,
    directory: Path,
    *extra_args: str,
    ca_file: Path | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    """Apply the compat catalog with the real CLI, then serve it (`ca_file`: over HTTPS,
    with `--tls-cert` and `--tls-key` among `extra_args`)."""
    keys = compat_keys()
    catalog_path = directory / "catalog.yaml"
    catalog_path.write_text(yaml.safe_dump(compat_catalog(keys)))
    server = Server(
        database_url,
        free_port(),
        directory,
        extra_args,
        keys=keys,
        fresh=_FRESH,
        ca_file=ca_file,
        env=env or {},
    )
    marketmeter("catalog", "apply", "--database", database_url, str(catalog_path), env=env)
    server.start()
    return server


@pytest.fixture
def own_postgres() -> Iterator[TemporaryPostgres]:
    """A cluster of this test's own: stopping it must not disturb other tests' servers."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no initdb): PostgreSQL tests skipped")
    pg = TemporaryPostgres(bindir)
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every compatibility test runs against both stores."""
    return str(request.param)


def new_database(
    request: pytest.FixtureRequest, kind: str, directory: Path, options: str = ""
) -> str:
    """A fresh database of the kind; `options` are added as URL query parameters."""
    if kind == "sqlite":
        url = f"sqlite:///{directory / 'compat.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database("compat")
    return f"{url}?{options}" if options else url


@pytest.fixture(scope="session")
def server(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"server-{store_kind}")
    database_url = new_database(request, store_kind, directory)
    srv = start_server(database_url, directory, "--regions", "us-east-1,us-west-2,eu-west-1")
    yield srv
    srv.stop()


class Fresh:
    """Hands each test customers and buyer keys no other test uses."""

    def __init__(self) -> None:
        self._next = itertools.count()

    def index(self) -> int:
        i = next(self._next)
        if i >= POOL:
            raise RuntimeError("the compat pool is used up: raise POOL")
        return i

    def customer(self) -> tuple[str, str]:
        """(CustomerAWSAccountId, CustomerIdentifier) of a fresh SaaS subscriber."""
        i = self.index()
        return pool_account(i), f"poolcust{i:05d}"

    def buyer_key(self) -> str:
        return f"buyer{self.index()}"


_FRESH = Fresh()  # one counter for every server of the session: numbers are never reused


@pytest.fixture
def fresh() -> Fresh:
    return _FRESH


def recent(minutes: int = 10) -> datetime:
    """A timestamp `minutes` ago, moved back into the previous hour if the clock is near
    an hour boundary, so that repeated calls in one test stay in one hour."""
    now = datetime.now(UTC)
    at = now - timedelta(minutes=minutes)
    if now.minute < 2 + minutes:  # keep clear of the boundary a slow test might cross
        at = now.replace(minute=0, second=0, microsecond=0) - timedelta(minutes=30)
    return at.replace(microsecond=0)


@pytest.fixture(scope="session")
def js_sdk() -> Node:
    """Node.js with the npm packages of `js/` installed (the JS SDK, AWS's SNS validator)."""
    return node_with_packages()
