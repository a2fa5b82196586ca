"""Opening a store from a database URL: `sqlite:///file.db` or `postgresql://…`."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

from marketmeter.domain.ports import Store

DEFAULT_DATABASE_URL = "sqlite:///marketmeter.db"


class UnsupportedDatabase(ValueError):
    pass


def open_store(url: str) -> Store:
    """`sqlite:///relative.db`, `sqlite:////absolute/path.db` (options `busy_timeout_ms`,
    default 5000, and `synchronous`, NORMAL or FULL — or OFF for a throwaway database,
    as the testing kit's), or `postgresql://user@host:port/db`
    (options `pool_size`, default 16 connections per process, and `pool_timeout`, default 5
    seconds to wait for a connection; every other parameter goes to libpq)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        from marketmeter.store.sqlite import SqliteStore

        path = sqlite_path(url)
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        synchronous = options.get("synchronous", "NORMAL").upper()
        if synchronous not in ("NORMAL", "FULL", "OFF"):
            raise UnsupportedDatabase("synchronous must be NORMAL or FULL (or OFF, throwaway)")
        try:
            busy = int(options.get("busy_timeout_ms", "5000"))
        except ValueError:
            raise UnsupportedDatabase("busy_timeout_ms must be a whole number") from None
        return SqliteStore(path, busy_timeout_ms=busy, synchronous=synchronous)
    if parts.scheme in ("postgresql", "postgres"):
        from marketmeter.store.postgres import PostgresStore

        query = parse_qs(parts.query, keep_blank_values=True)
        ours = {k: query.pop(k)[-1] for k in _POOL_OPTIONS if k in query}
        try:
            pool_size = int(ours.get("pool_size", "16"))
            pool_timeout = float(ours.get("pool_timeout", "5"))
        except ValueError:
            raise UnsupportedDatabase("pool_size and pool_timeout must be numbers") from None
        return PostgresStore(libpq_url(url), pool_size=pool_size, pool_timeout=pool_timeout)
    raise UnsupportedDatabase(
        f"unsupported database URL {url!r}: use sqlite:///file.db or postgresql://…"
    )


_POOL_OPTIONS = ("pool_size", "pool_timeout")


def sqlite_path(url: str) -> str:
    """The file of a `sqlite:///…` URL."""
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise UnsupportedDatabase(f"no file in database URL {url!r}: use sqlite:///file.db")
    return path


def libpq_url(url: str) -> str:
    """A `postgresql://…` URL without marketmeter's own options: libpq's (and its tools')."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    for option in _POOL_OPTIONS:
        query.pop(option, None)
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True, quote_via=quote)))
