"""The admin API's bearer token: configured (`MARKETMETER_ADMIN_TOKEN`, at least 16
characters) or generated once and kept only as its SHA-256, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from marketmeter.domain.errors import CatalogError
from marketmeter.domain.ports import Store

MIN_TOKEN_LENGTH = 16


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_configured_token(token: str) -> None:
    if len(token) < MIN_TOKEN_LENGTH:
        raise CatalogError(
            f"MARKETMETER_ADMIN_TOKEN must be at least {MIN_TOKEN_LENGTH} characters "
            f"(it has {len(token)})"
        )


def ensure_admin_token(store: Store, now: datetime) -> str | None:
    """Make and keep (hashed) a token unless one is kept: the new token — to be shown once
    — or None when one existed."""
    if store.admin_token_hash() is not None:
        return None
    token = secrets.token_urlsafe(32)
    with store.transaction() as tx:
        kept = tx.put_admin_token_hash(token_hash(token), now)
    return token if kept == token_hash(token) else None


def token_matches(expected_hash: str, presented: str) -> bool:
    return hmac.compare_digest(expected_hash, token_hash(presented))
