"""`marketmeter doctor` on real databases: a healthy one passes (with what to improve), and
each kind of trouble — a migration missing, a damaged file, secrets under a key nobody
configured, an unreachable PostgreSQL, a key that is not one — fails with what to fix."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from tests.compat.server import marketmeter
from tests.postgres import TemporaryPostgres

pytestmark = pytest.mark.compat

CATALOG = """
accounts:
  - account_id: "111122223333"
    access_keys:
      - {access_key_id: AKIADOCTOR0000000001, secret_access_key: doctor-secret-0000000000000000000000001}
products:
  - {product_code: doctorsaas00000000000001, seller_account_id: "111122223333", type: saas, dimensions: [users]}
"""


def applied(url: str, tmp: Path, env: dict[str, str] | None = None) -> str:
    catalog = tmp / "catalog.yaml"
    catalog.write_text(CATALOG)
    marketmeter("catalog", "apply", "--database", url, str(catalog), env=env)
    return url


def doctor(url: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = marketmeter("doctor", "--database", url, env=env, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout


NO_KEY = {"MARKETMETER_SECRET_KEY": "", "MARKETMETER_ADMIN_TOKEN": ""}


def test_a_healthy_sqlite_database_passes_and_says_what_to_improve(tmp_path: Path) -> None:
    url = applied(f"sqlite:///{tmp_path / 'ok.db'}", tmp_path, NO_KEY)
    status, out = doctor(url, NO_KEY)
    assert status == 0, out
    assert "ok    migrations: all" in out
    assert "ok    integrity:" in out
    assert "ok    usage rollups: 0 records not folded yet" in out
    assert "WARN  secret key: none" in out
    assert "FAIL" not in out


def test_sqlite_usage_rollups_damaged_missing_or_of_other_records_are_a_warning(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.db"
    url = applied(f"sqlite:///{path}", tmp_path, NO_KEY)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE usage_generation SET generation = 'another'")  # as a reset does
    conn.commit()
    conn.close()
    status, out = doctor(url, NO_KEY)
    assert status == 0, out
    assert "WARN  usage rollups: of other records" in out
    Path(f"{path}.rollups").write_bytes(b"damaged " * 1000)
    status, out = doctor(url, NO_KEY)
    assert status == 0, out
    assert f"WARN  usage rollups: {path}.rollups: file is not a database: the next" in out
    assert "ok    integrity:" in out  # (the database itself is fine)
    Path(f"{path}.rollups").unlink()
    status, out = doctor(url, NO_KEY)
    assert status == 0, out
    assert f"WARN  usage rollups: no {path}.rollups: the next process" in out


def test_a_missing_migration_and_a_damaged_file_fail(tmp_path: Path) -> None:
    url = applied(f"sqlite:///{tmp_path / 'old.db'}", tmp_path, NO_KEY)
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute("DELETE FROM schema_migrations WHERE version = 7")
    conn.commit()
    conn.close()
    status, out = doctor(url, NO_KEY)
    assert status == 1
    assert "FAIL  migrations: 1 not applied (7): start one server" in out

    damaged = tmp_path / "damaged.db"
    applied(f"sqlite:///{damaged}", tmp_path, NO_KEY)
    data = bytearray(damaged.read_bytes())
    data[4096 + 100 : 4096 + 4000] = b"\xff" * 3900  # the second page, scribbled over
    damaged.write_bytes(bytes(data))
    status, out = doctor(f"sqlite:///{damaged}", NO_KEY)
    assert status == 1
    assert "FAIL" in out and ("integrity" in out or "malformed" in out), out


def test_secrets_under_a_key_not_configured_fail(tmp_path: Path) -> None:
    key = marketmeter("secrets", "generate").stdout.strip()
    url = applied(f"sqlite:///{tmp_path / 'sealed.db'}", tmp_path, {"MARKETMETER_SECRET_KEY": key})
    assert doctor(url, {"MARKETMETER_SECRET_KEY": key})[1].count("ok    secrets:") == 1
    status, out = doctor(url, NO_KEY)
    assert status == 1
    assert "FAIL  secrets: stored under key(s)" in out
    status, out = doctor(url, {"MARKETMETER_SECRET_KEY": "not-a-key"})
    assert status == 1
    assert "FAIL  secret key:" in out


def test_postgresql_reachable_or_not(postgres: TemporaryPostgres, tmp_path: Path) -> None:
    url = applied(postgres.create_database("doctor"), tmp_path, NO_KEY)
    status, out = doctor(url, NO_KEY)
    assert status == 0, out
    assert "ok    database: PostgreSQL" in out
    assert "clock:" in out and "from PostgreSQL's" in out
    assert "durability: fsync = off" in out  # the test clusters run without fsync
    unreachable = f"postgresql://nobody@127.0.0.1:{postgres.port + 1}/none"
    status, out = doctor(unreachable, NO_KEY)
    assert status == 1
    assert "FAIL  database: PostgreSQL unreachable" in out


def test_postgresql_usage_rollups_of_another_cluster_are_a_warning(
    postgres: TemporaryPostgres, tmp_path: Path
) -> None:
    url = applied(postgres.create_database("doctor"), tmp_path, NO_KEY)
    status, out = doctor(url, NO_KEY)
    assert status == 0, out
    assert "ok    usage rollups: 0 log rows not folded yet" in out
    with psycopg.connect(url, autocommit=True) as conn:  # as a dump of another cluster
        conn.execute("UPDATE usage_folded SET below_xid = 2 ^ 40")
    status, out = doctor(url, NO_KEY)
    assert status == 0, out
    assert "WARN  usage rollups: of another cluster's transactions (a restore)" in out
