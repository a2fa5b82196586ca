"""Opening a store from a database URL (`sqlite:///file.db`)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from marketmeter.store.base import Store

DEFAULT_DATABASE_URL = "sqlite:///marketmeter.db"


class UnsupportedDatabase(ValueError):
    pass


def open_store(url: str) -> Store:
    """`sqlite:///relative.db`, `sqlite:////absolute/path.db`; options as query parameters:
    `busy_timeout_ms` (default 5000) and `synchronous` (NORMAL or FULL)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        from marketmeter.store.sqlite import SqliteStore

        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise UnsupportedDatabase(f"no file in database URL {url!r}: use sqlite:///file.db")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        synchronous = options.get("synchronous", "NORMAL").upper()
        if synchronous not in ("NORMAL", "FULL"):
            raise UnsupportedDatabase("synchronous must be NORMAL or FULL")
        try:
            busy = int(options.get("busy_timeout_ms", "5000"))
        except ValueError:
            raise UnsupportedDatabase("busy_timeout_ms must be a whole number") from None
        return SqliteStore(path, busy_timeout_ms=busy, synchronous=synchronous)
    if parts.scheme in ("postgresql", "postgres"):
        raise UnsupportedDatabase(
            "PostgreSQL support is not built yet; use sqlite:///file.db for now"
        )
    raise UnsupportedDatabase(
        f"unsupported database URL {url!r}: use sqlite:///file.db or postgresql://…"
    )
