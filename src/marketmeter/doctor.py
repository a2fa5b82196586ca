"""`marketmeter doctor`: what is wrong with a deployment, and what to do about it — the
configuration (settings, the secret key, TLS files), the database (reachable, its
integrity, its migrations, SQLite's WAL, PostgreSQL's durability settings, the secrets it
holds opening with the configured keys) and the clock (against PostgreSQL's).

Looks only: it changes nothing (no migration, no checkpoint). Each finding is `ok`,
`warn` or `fail`, with what to fix.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from marketmeter.config import Settings
from marketmeter.store import secrets
from marketmeter.store.factory import UnsupportedDatabase, libpq_url, sqlite_path
from marketmeter.store.migrations import migrations_for
from marketmeter.store.sql.usage import PG_STALE_MARK, SQLITE_ROLLUPS
from marketmeter.store.sqlite_rollups import read_marks, rollups_path

Level = Literal["ok", "warn", "fail"]
WAL_WARN_BYTES = 256 * 2**20
CLOCK_WARN_SECONDS = 1.0


@dataclass(frozen=True)
class Finding:
    level: Level
    topic: str
    text: str


def examine(settings: Settings) -> Iterator[Finding]:
    yield from _configuration(settings)
    scheme = urlsplit(settings.database_url).scheme
    try:
        if scheme == "sqlite":
            yield from _sqlite(settings.database_url)
        elif scheme in ("postgresql", "postgres"):
            yield from _postgresql(settings.database_url)
        else:
            raise UnsupportedDatabase(f"unsupported database URL {settings.database_url!r}")
    except UnsupportedDatabase as exc:
        yield Finding("fail", "database", str(exc))


def _configuration(settings: Settings) -> Iterator[Finding]:
    try:
        box = secrets.Secrets(secrets.keys_from_environment())
    except secrets.SecretKeyError as exc:
        yield Finding("fail", "secret key", f"{exc}")
    else:
        if box.current is None:
            yield Finding(
                "warn",
                "secret key",
                f"none: secrets are stored in the clear — set {secrets.KEY_VARIABLE} "
                "(`marketmeter secrets generate`), then run `marketmeter secrets rotate`",
            )
        else:
            yield Finding("ok", "secret key", f"{len(box.key_ids)} key(s), current {box.current}")
    if bool(settings.tls_cert) != bool(settings.tls_key):
        yield Finding("fail", "TLS", "set both MARKETMETER_TLS_CERT and MARKETMETER_TLS_KEY")
    elif settings.tls_cert:
        import ssl

        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                settings.tls_cert, settings.tls_key
            )
            yield Finding("ok", "TLS", f"certificate {settings.tls_cert} loads with its key")
        except (OSError, ssl.SSLError) as exc:
            yield Finding("fail", "TLS", f"{settings.tls_cert}: {exc}")
    if settings.test_controls:
        yield Finding(
            "warn", "test controls", "on: clock travel and fault injection — never in production"
        )
    if not settings.admin_token:
        yield Finding(
            "warn",
            "admin token",
            "MARKETMETER_ADMIN_TOKEN unset: the token generated on the first start is used",
        )


def _sqlite(url: str) -> Iterator[Finding]:
    path = Path(sqlite_path(url))
    if not path.is_file():
        yield Finding("fail", "database", f"no database file {path}")
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            quick = conn.execute("PRAGMA quick_check").fetchall()
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            yield from _migrations("sqlite", conn.execute)
            yield from _stored_secrets(conn.execute)
            yield from _sqlite_rollups(conn, str(path))
        finally:
            conn.close()
    except sqlite3.Error as exc:
        yield Finding("fail", "database", f"{path}: {exc}")
        return
    if quick == [("ok",)]:
        yield Finding("ok", "integrity", f"{path}: quick_check ok")
    else:
        yield Finding(
            "fail",
            "integrity",
            f"{path}: {quick[:3]} — restore the last backup (`marketmeter restore`)",
        )
    if mode != "wal":
        yield Finding("warn", "journal", f"journal_mode {mode}: a server sets WAL when it opens it")
    wal = Path(f"{path}-wal")
    size = wal.stat().st_size if wal.exists() else 0
    if size > WAL_WARN_BYTES:
        yield Finding(
            "warn",
            "WAL",
            f"{size / 2**20:,.0f} MiB: checkpoints are falling behind — a long-running reader "
            "holds them back (an open export?), or the disk is slow",
        )
    else:
        yield Finding("ok", "WAL", f"{size / 2**20:,.1f} MiB")
    yield Finding("ok", "clock", "SQLite has no server clock to compare with: keep NTP running")


def _sqlite_rollups(conn: sqlite3.Connection, path: str) -> Iterator[Finding]:
    """The usage rollups' file beside the database: there, and of the same records."""
    if not conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'usage_generation'"
    ).fetchone():
        return  # (a schema before 9: the migrations' finding says so)
    refill = (
        "the next process that opens the database makes it again from the records "
        "(restart running servers: they still use the file they opened)"
    )
    rollups = rollups_path(path)
    if not Path(rollups).is_file():
        yield Finding("warn", "usage rollups", f"no {rollups}: {refill}")
        return
    try:
        conn.execute(
            f"ATTACH DATABASE ? AS {SQLITE_ROLLUPS}", (Path(rollups).as_uri() + "?mode=ro",)
        )
        marks = read_marks(conn)
        waiting = None
        if marks is not None:
            (waiting,) = conn.execute(
                "SELECT count(*) FROM metering_records WHERE seq > ?", (marks.records,)
            ).fetchone()
    except sqlite3.Error as exc:
        yield Finding("warn", "usage rollups", f"{rollups}: {exc}: {refill}")
        return
    finally:
        if any(row[1] == SQLITE_ROLLUPS for row in conn.execute("PRAGMA database_list")):
            conn.execute(f"DETACH DATABASE {SQLITE_ROLLUPS}")
    if marks is None:
        yield Finding(
            "warn",
            "usage rollups",
            "of other records (a reset, a restore or a copy): filled again from the records "
            "by the next report or fold, or when a process opens the database",
        )
    else:
        yield Finding("ok", "usage rollups", f"{waiting:,} records not folded yet")


def _postgresql_rollups(run: Callable[[str], Any]) -> Iterator[Finding]:
    """The usage rollups' mark: of this cluster's transactions, and how much waits for a
    fold."""
    if run("SELECT to_regclass('usage_folded')").fetchone()[0] is None:
        return  # (a schema before 10: the migrations' finding says so)
    ahead, waiting = run(
        f"SELECT {PG_STALE_MARK}, "
        "(SELECT count(*) FROM metering_records WHERE allocations IS NULL "
        "AND logged_by >= below_xid) + (SELECT count(*) FROM usage_pending) "
        "FROM usage_folded WHERE id = 1"
    ).fetchone()
    if ahead:
        yield Finding(
            "warn",
            "usage rollups",
            "of another cluster's transactions (a restore): summed again from the records "
            "when a process opens the database",
        )
    else:
        yield Finding("ok", "usage rollups", f"{waiting:,} log rows not folded yet")


def _postgresql(url: str) -> Iterator[Finding]:
    import psycopg

    try:
        conn = psycopg.connect(libpq_url(url), connect_timeout=5, autocommit=True)
    except psycopg.Error as exc:
        yield Finding("fail", "database", f"PostgreSQL unreachable: {exc}".strip())
        return
    with conn:
        version = conn.execute("SHOW server_version").fetchone()
        yield Finding("ok", "database", f"PostgreSQL {version[0] if version else '?'} reachable")

        def run(sql: str) -> Any:
            return conn.execute(sql)

        try:
            yield from _migrations("postgresql", run)
            yield from _stored_secrets(run)
            yield from _postgresql_rollups(run)
        except psycopg.Error as exc:
            yield Finding("fail", "database", str(exc).strip())
            return
        for setting, good in (("fsync", "on"), ("synchronous_commit", "on")):
            row = conn.execute(f"SHOW {setting}").fetchone()
            value = row[0] if row else "?"
            if value != good:
                yield Finding(
                    "warn",
                    "durability",
                    f"{setting} = {value}: an acknowledged record can be lost in a crash",
                )
        started = time.time()
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
        ended = time.time()
        skew = float(row[0]) - (started + ended) / 2 if row else 0.0
        level: Level = "warn" if abs(skew) > CLOCK_WARN_SECONDS else "ok"
        advice = " — metering windows are judged by this machine's clock: fix NTP" * (
            level == "warn"
        )
        yield Finding(level, "clock", f"{skew:+.3f} s from PostgreSQL's{advice}")


def _migrations(dialect: Literal["sqlite", "postgresql"], run: Any) -> Iterator[Finding]:
    try:
        applied = {row[0] for row in run("SELECT version FROM schema_migrations").fetchall()}
    except Exception:  # no such table: never opened by marketmeter
        yield Finding("fail", "migrations", "not a marketmeter database (no schema_migrations)")
        return
    known = {m.version for m in migrations_for(dialect)}
    missing = sorted(known - applied)
    ahead = sorted(applied - known)
    if missing:
        yield Finding(
            "fail",
            "migrations",
            f"{len(missing)} not applied ({', '.join(map(str, missing))}): start one server "
            "of this build, which applies them",
        )
    elif ahead:
        yield Finding(
            "fail",
            "migrations",
            f"the database has migrations this build does not ({', '.join(map(str, ahead))}): "
            "a newer marketmeter migrated it — upgrade this one",
        )
    else:
        yield Finding("ok", "migrations", f"all {len(known)} applied")


def _stored_secrets(run: Any) -> Iterator[Finding]:
    box = _usable_secrets()
    stored = [
        row[0]
        for row in run(
            "SELECT secret_access_key FROM access_keys UNION ALL "
            "SELECT private_pem FROM signing_keys UNION ALL SELECT private_pem FROM sns_keys"
        ).fetchall()
    ]
    plain = sum(not s.startswith(secrets.PREFIX) for s in stored)
    under = {
        s[len(secrets.PREFIX) :].split(":", 1)[0] for s in stored if s.startswith(secrets.PREFIX)
    }
    unknown = sorted(under - set(box.key_ids))
    if unknown:
        yield Finding(
            "fail",
            "secrets",
            f"stored under key(s) {', '.join(unknown)}, not configured: requests needing them "
            f"fail — add the key to {secrets.KEY_VARIABLE}",
        )
    elif plain and box.current is not None:
        yield Finding(
            "warn",
            "secrets",
            f"{plain} stored in the clear: run `marketmeter secrets rotate` to encrypt them",
        )
    else:
        yield Finding("ok", "secrets", f"{len(stored)} stored, all readable")


def _usable_secrets() -> secrets.Secrets:
    """The configured keys, or none if they are not usable (said by `_configuration`)."""
    try:
        return secrets.Secrets(secrets.keys_from_environment())
    except secrets.SecretKeyError:
        return secrets.Secrets()
