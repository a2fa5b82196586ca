"""Console sessions: a signed cookie (HttpOnly, SameSite=Strict) holding a CSRF token.

The signing key is derived from the admin token's hash, which only the server holds: a
new admin token signs every session out. Forms carry the session's CSRF token; the
sign-in form, before any session, a nonce that a short-lived signed cookie carries too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "mm_console"
SIGN_IN_COOKIE = "mm_console_sign_in"
SESSION_SECONDS = 12 * 3600
SIGN_IN_SECONDS = 3600


@dataclass(frozen=True)
class Session:
    csrf: str


class Sessions:
    def __init__(self, token_hash: str) -> None:
        key = hmac.new(token_hash.encode(), b"marketmeter console sessions", hashlib.sha256)
        self._signer = URLSafeTimedSerializer(key.hexdigest(), salt="console-session")
        self._sign_in = URLSafeTimedSerializer(key.hexdigest(), salt="console-sign-in")

    def issue(self) -> str:
        """A new session's cookie value."""
        return self._signer.dumps({"csrf": secrets.token_urlsafe(24)})

    def read(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=SESSION_SECONDS)
        except BadSignature:
            return None
        csrf = data.get("csrf") if isinstance(data, dict) else None
        return Session(csrf) if isinstance(csrf, str) else None

    def sign_in_nonce(self) -> tuple[str, str]:
        """A nonce for the sign-in form, and the cookie that vouches for it."""
        nonce = secrets.token_urlsafe(24)
        return nonce, self._sign_in.dumps(nonce)

    def sign_in_nonce_matches(self, cookie: str | None, presented: str) -> bool:
        if not cookie or not presented:
            return False
        try:
            nonce = self._sign_in.loads(cookie, max_age=SIGN_IN_SECONDS)
        except BadSignature:
            return False
        return isinstance(nonce, str) and hmac.compare_digest(nonce.encode(), presented.encode())
