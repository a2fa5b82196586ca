"""A real `marketmeter serve` process on a free port, for the compatibility suite."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import psycopg
from botocore.config import Config

from tests.factories import KEYS, SAAS

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def marketmeter(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real command-line program."""
    return subprocess.run(
        [sys.executable, "-m", "marketmeter", *args],
        capture_output=True,
        text=True,
        check=check,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


@dataclass
class Server:
    database_url: str
    port: int
    directory: Path
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    keys: dict[str, tuple[str, str, str]] = field(default_factory=lambda: dict(KEYS))
    fresh: Any = None
    ca_file: Path | None = None
    """Serving HTTPS (`--tls-cert`): the CA that signed its certificate."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables of the server process, beyond this one's."""

    @property
    def url(self) -> str:
        return f"{'https' if self.ca_file else 'http'}://127.0.0.1:{self.port}"

    def urlopen(self, request: str | urllib.request.Request, timeout: float = 10) -> Any:
        """`urllib.request.urlopen`, trusting the server's CA when it serves HTTPS."""
        context = None if self.ca_file is None else ssl.create_default_context(cafile=self.ca_file)
        return urllib.request.urlopen(request, timeout=timeout, context=context)

    @property
    def kind(self) -> str:
        return "sqlite" if self.database_url.startswith("sqlite") else "postgresql"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = self._spawn(log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                with self.urlopen(self.url + "/health", timeout=1) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()}")

    def _spawn(self, log: Any) -> subprocess.Popen[bytes]:
        # The server's temporary files (its metrics directory) under the test's directory:
        # a server killed with SIGKILL cannot remove them, and pytest clears this one.
        temporary = self.directory / f"tmp-{self.port}"
        temporary.mkdir(exist_ok=True)
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "marketmeter",
                "serve",
                "--port",
                str(self.port),
                "--database",
                self.database_url,
                "--log-level",
                "warning",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "TMPDIR": str(temporary), **self.env},
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def client(
        self, key: str = "seller", region: str = "us-east-1", config: Config = NO_RETRIES
    ) -> Any:
        key_id, secret, _ = self.keys[key]
        return boto3.client(
            "meteringmarketplace",
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=SESSION_TOKENS.get(key),
            config=config,
            verify=str(self.ca_file) if self.ca_file else None,
        )

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the server's database directly (what was stored, not what was answered), or
        write it (committed). Placeholders are `?`."""
        if self.kind == "sqlite":
            path = urlsplit(self.database_url).path[1:]
            conn = sqlite3.connect(path)
            try:
                rows = list(conn.execute(query, params).fetchall())
                conn.commit()
                return rows
            finally:
                conn.close()
        with psycopg.connect(_libpq(self.database_url)) as pg:
            cursor = pg.execute(query.replace("?", "%s"), params)
            return [] if cursor.description is None else [tuple(row) for row in cursor.fetchall()]

    def record_count(self) -> int:
        return int(self.sql("SELECT COUNT(*) FROM metering_records")[0][0])

    @contextmanager
    def records_locked(self) -> Iterator[None]:
        """Hold a lock on the records table, as a long maintenance job would."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(urlsplit(self.database_url).path[1:], isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            try:
                yield
            finally:
                conn.execute("ROLLBACK")
                conn.close()
        else:
            with psycopg.connect(_libpq(self.database_url)) as pg, pg.transaction():
                pg.execute("LOCK TABLE metering_records IN ACCESS EXCLUSIVE MODE")
                yield

    def records(self, product: str | None = None) -> list[dict[str, Any]]:
        import json

        args = ["records", "export", "--database", self.database_url]
        if product:
            args += ["--product", product]
        return [json.loads(line) for line in marketmeter(*args).stdout.splitlines()]


SESSION_TOKENS: dict[str, str] = {}


def _libpq(url: str) -> str:
    """The URL without marketmeter's own options and libpq's server options."""
    return urlunsplit(urlsplit(url)._replace(query=""))


def expect_error(
    server: Server, code: str, status: int, call: Any, *args: Any, **kwargs: Any
) -> dict[str, Any]:
    """Call an SDK method that must fail with `code` and `status`, storing nothing."""
    from botocore.exceptions import ClientError

    before = server.record_count()
    try:
        call(*args, **kwargs)
    except ClientError as exc:
        response: dict[str, Any] = exc.response
    else:
        raise AssertionError(f"expected {code}, the call succeeded")
    assert response["Error"]["Code"] == code, response["Error"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == code
    assert response["Error"]["Message"], "every error carries a message"
    assert server.record_count() == before, "a failed request stored records"
    return response


def verified_claims(
    server: Server, signature: str, product: str, version: int = 1
) -> dict[str, Any]:
    """A RegisterUsage signature, verified with the PEM that `marketmeter keys public` prints."""
    import jwt

    pem = marketmeter(
        "keys",
        "public",
        "--database",
        server.database_url,
        "--product",
        product,
        "--version",
        str(version),
    ).stdout
    return dict(jwt.decode(signature, pem, algorithms=["PS256"]))


# -- helpers of the SDK tests ----------------------------------------------------------------


def issue_token(server: Server, account: str, product: str = SAAS, *extra: str) -> str:
    """A registration token, as `marketmeter token issue` prints it."""
    out = marketmeter(
        "token",
        "issue",
        "--database",
        server.database_url,
        "--product",
        product,
        "--customer-account",
        account,
        *extra,
    )
    return out.stdout.splitlines()[-1]


def sdk_environment(tmp: Path) -> dict[str, str]:
    """This process's environment without AWS settings, and no config or credentials file:
    an SDK sees only what a test gives it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_CONFIG_FILE": str(tmp / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    return env


def millis(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def iso(at: datetime) -> str:
    """A time as `records export` writes it (and JavaScript's Date.toISOString)."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cancel_subscription(server: Server, account: str, product: str = SAAS) -> None:
    """`marketmeter subscription cancel`, from another process than the server's."""
    marketmeter(
        "subscription",
        "cancel",
        "--database",
        server.database_url,
        "--product",
        product,
        "--customer-account",
        account,
    )
