"""`MarketmeterServer`: a real `marketmeter serve --test-controls` on a free port, for code
under test that must go over HTTP (the AWS CLI, another language's SDK, a container),
with the same handle as the in-process mock, working on the server's database.

`reset()` puts the marketplace back to the catalog alone — records, subscriptions,
tokens, entitlements, notification targets, deliveries and test controls gone — in one
transaction; the server's processes hear of it before their next request.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import weakref
from pathlib import Path
from typing import Any

from marketmeter.catalog_source import CatalogSource, load_catalog
from marketmeter.config import Settings
from marketmeter.domain.models import Catalog
from marketmeter.services import create_service, marketplace_clock
from marketmeter.store import open_store
from marketmeter.testing.handle import MarketplaceHandle

START_TIMEOUT = 30.0


class ServerFailed(RuntimeError):
    """The server did not start (its output says why)."""


class MarketmeterServer:
    def __init__(
        self,
        catalog: CatalogSource = None,
        *,
        database_url: str | None = None,
        workers: int = 1,
        directory: Path | None = None,
    ) -> None:
        """`database_url`: a PostgreSQL database to use (emptied at start); default, an
        SQLite file in `directory` (a temporary one)."""
        self._catalog: Catalog = load_catalog(catalog)
        self.directory = directory or Path(tempfile.mkdtemp(prefix="marketmeter-server-"))
        if directory is None:  # ours: removed when this is collected or the process exits
            weakref.finalize(self, shutil.rmtree, self.directory, True)
        self.database_url = database_url or f"sqlite:///{self.directory / 'marketplace.db'}"
        self._workers = workers
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = self.directory / "server.log"
        self.port = 0
        self.handle: MarketplaceHandle | None = None
        self._store: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- life ------------------------------------------------------------------------------

    def start(self) -> MarketmeterServer:
        store = open_store(self.database_url)
        clock = marketplace_clock(store)
        service = create_service(Settings(database_url=self.database_url), store, clock)
        service.apply_catalog(self._catalog, clear=True)
        clock.offset = store.test_controls().clock_offset
        self._store = store
        self.handle = MarketplaceHandle(
            service,
            obey=lambda controls: setattr(clock, "offset", controls.clock_offset),
            check_active=lambda: self._process is not None,
        )
        self.port = _free_port()
        command = [
            sys.executable,
            "-m",
            "marketmeter",
            "serve",
            "--database",
            self.database_url,
            "--port",
            str(self.port),
            "--workers",
            str(self._workers),
            "--test-controls",
            "--log-level",
            "warning",
        ]
        log = self._log_path.open("ab")
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._wait_until_up()
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                raise ServerFailed(f"marketmeter serve exited at start:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.endpoint_url + "/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ServerFailed(
            f"marketmeter serve did not answer in {START_TIMEOUT:g} s:\n{self.output()}"
        )

    def output(self) -> str:
        """What the server wrote (warnings and errors)."""
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def reset(self) -> None:
        """Back to the catalog alone (a test's fresh start)."""
        assert self.handle is not None
        self.handle.service.apply_catalog(self._catalog, clear=True)
        self.handle.clock.reset()
        self.handle.fulfillment_answers.clear()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> MarketmeterServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- for the code under test -------------------------------------------------------

    def credentials(self, account: str | None = None) -> dict[str, str]:
        """boto3's keywords for an access key of `account` in the catalog (default: the
        seller of the catalog's products)."""
        wanted = account or self._seller()
        for key in self._catalog.access_keys:
            if key.account_id == wanted:
                found = {
                    "aws_access_key_id": key.access_key_id,
                    "aws_secret_access_key": key.secret_access_key,
                }
                if key.session_token:
                    found["aws_session_token"] = key.session_token
                return found
        raise LookupError(f"the catalog has no access key of account {wanted}")

    def environment(self, account: str | None = None) -> dict[str, str]:
        """Environment variables for a process under test (the AWS CLI, an SDK): the
        endpoint, a Region and an access key."""
        keys = self.credentials(account)
        env = {
            "AWS_ENDPOINT_URL_MARKETPLACE_METERING": self.endpoint_url,
            "AWS_ENDPOINT_URL_MARKETPLACE_ENTITLEMENT_SERVICE": self.endpoint_url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
        }
        if "aws_session_token" in keys:
            env["AWS_SESSION_TOKEN"] = keys["aws_session_token"]
        return env

    def client(self, service: str = "meteringmarketplace", account: str | None = None) -> Any:
        """A client of the server (botocore's, as boto3 makes them): `meteringmarketplace`
        or `marketplace-entitlement`."""
        import botocore.session

        return botocore.session.get_session().create_client(
            service,
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            **self.credentials(account),
        )

    def _seller(self) -> str:
        sellers = sorted({p.seller_account_id for p in self._catalog.products})
        if len(sellers) != 1:
            raise LookupError(f"name the account: the catalog has sellers {sellers}")
        return sellers[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


__all__ = ["MarketmeterServer", "ServerFailed"]
