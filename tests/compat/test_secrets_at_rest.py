"""Secrets at rest with real processes, on both stores: a database written under
MARKETMETER_SECRET_KEY holds no secret key in the clear (a copy of its file yields none),
the server authenticates with what it decrypts, `secrets rotate` moves every secret to a
new key while servers holding both keys serve, and a server without the key says why."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from tests.compat.conftest import new_database, recent, start_server
from tests.compat.server import marketmeter
from tests.factories import SAAS

pytestmark = pytest.mark.compat


def generate() -> str:
    return marketmeter("secrets", "generate").stdout.strip()


def stored_bytes(url: str, server: object) -> bytes:
    if url.startswith("sqlite"):
        path = Path(urlsplit(url).path[1:])
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    rows = server.sql(  # type: ignore[attr-defined]
        "SELECT secret_access_key FROM access_keys UNION ALL SELECT private_pem FROM "
        "signing_keys UNION ALL SELECT private_pem FROM sns_keys"
    )
    return "\n".join(r[0] for r in rows).encode()


def batch(server: object, account: str) -> dict[str, object]:
    record = {
        "Timestamp": recent(),
        "CustomerAWSAccountId": account,
        "Dimension": "users",
        "Quantity": 1,
    }
    return server.client().batch_meter_usage(  # type: ignore[attr-defined,no-any-return]
        ProductCode=SAAS, UsageRecords=[record]
    )


def test_secrets_are_stored_encrypted_and_rotated_without_downtime(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = tmp_path_factory.mktemp(f"secrets-{store_kind}")
    url = new_database(request, store_kind, directory)
    first, second = generate(), generate()
    server = start_server(url, directory, env={"MARKETMETER_SECRET_KEY": first})
    try:
        assert batch(server, "500000000900")["Results"][0]["Status"] == "Success"
        secret = server.keys["seller"][1]
        at_rest = stored_bytes(url, server)
        assert secret.encode() not in at_rest
        assert b"PRIVATE KEY" not in at_rest  # the signing keys, the SNS key
        assert b"mmenc1:" in at_rest
        server.env["MARKETMETER_SECRET_KEY"] = f"{second},{first}"
        server.stop()
        server.start()  # (a rolling restart: each server with both keys)
        rotated = marketmeter(
            "secrets",
            "rotate",
            "--database",
            url,
            env={"MARKETMETER_SECRET_KEY": f"{second},{first}"},
        )
        assert "encrypted under key" in rotated.stdout
        assert batch(server, "500000000901")["Results"][0]["Status"] == "Success"
        server.env["MARKETMETER_SECRET_KEY"] = second
        server.stop()
        server.start()  # the old key gone
        assert batch(server, "500000000902")["Results"][0]["Status"] == "Success"
        server.env["MARKETMETER_SECRET_KEY"] = first
        server.stop()
        server.start()  # a server with only the old key cannot read what is stored now
        with pytest.raises(ClientError) as refused:
            batch(server, "500000000903")
        assert refused.value.response["Error"]["Code"] == "InternalServiceErrorException"
        assert "not among the configured keys" in server.log_path.read_text()
    finally:
        server.stop()


def test_serve_without_a_key_warns_once_and_a_bad_key_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    server = start_server(url, tmp_path)
    try:
        assert batch(server, "500000000904")["Results"][0]["Status"] == "Success"
    finally:
        server.stop()
    assert server.log_path.read_text().count("warning: no MARKETMETER_SECRET_KEY") == 1
    bad = marketmeter(
        "serve", "--database", url, env={"MARKETMETER_SECRET_KEY": "not-a-key"}, check=False
    )
    assert bad.returncode == 2
    assert "32 bytes in URL-safe base64" in bad.stderr
    no_key = marketmeter(
        "secrets", "rotate", "--database", url, check=False, env={"MARKETMETER_SECRET_KEY": ""}
    )
    assert no_key.returncode == 1
    assert "no key" in no_key.stderr
