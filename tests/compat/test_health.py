"""`/healthz` and `/readyz` of a real server: answered without credentials, in one word
of why; `/readyz` follows the database (reachable, every migration applied)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from email.message import Message

import pytest

from tests.compat.conftest import start_server
from tests.compat.server import Server
from tests.postgres import TemporaryPostgres

pytestmark = pytest.mark.compat


def get(server: Server, path: str, method: str = "GET") -> tuple[int, Message, dict[str, str]]:
    request = urllib.request.Request(server.url + path, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.headers, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read())


def test_health_and_readiness_answer_without_credentials(server: Server) -> None:
    status, headers, body = get(server, "/healthz")
    assert (status, body) == (200, {"status": "ok"})
    assert headers["Cache-Control"] == "no-store"
    assert get(server, "/readyz")[::2] == (200, {"status": "ready"})
    status, headers, body = get(server, "/readyz", method="POST")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


def test_a_database_missing_a_migration_is_not_ready(server: Server) -> None:
    """As when a server meets a database restored from before an upgrade: not ready until
    the migration is there again."""
    version, name = server.sql("SELECT version, name FROM schema_migrations ORDER BY version DESC")[
        0
    ]
    server.sql("DELETE FROM schema_migrations WHERE version = ?", (version,))
    try:
        assert get(server, "/readyz")[::2] == (
            503,
            {"status": "unavailable", "reason": "migrations"},
        )
        assert get(server, "/healthz")[0] == 200  # alive all the same
    finally:
        server.sql("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (version, name))
    assert get(server, "/readyz")[::2] == (200, {"status": "ready"})
    assert f"{version:04d}_{name}" in server.log_path.read_text()  # the detail is logged


def test_a_stopped_postgresql_is_not_ready_and_a_started_one_is_again(
    own_postgres: TemporaryPostgres, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = own_postgres.create_database("ready") + "?pool_timeout=1"
    server = start_server(url, tmp_path_factory.mktemp("ready"))
    try:
        assert get(server, "/readyz")[::2] == (200, {"status": "ready"})
        own_postgres.pg_ctl("stop")
        started = time.monotonic()
        assert get(server, "/readyz")[::2] == (503, {"status": "unavailable", "reason": "database"})
        assert time.monotonic() - started < 5  # answered within the readiness timeout
        assert get(server, "/healthz")[0] == 200
        own_postgres.pg_ctl("start")
        deadline = time.monotonic() + 30
        while get(server, "/readyz")[0] != 200:
            assert time.monotonic() < deadline, "never ready again"
            time.sleep(0.2)
    finally:
        server.stop()
