"""From a signed request to a `Caller`: SigV4 verification against the catalog's access
keys, then the session-token checks of temporary credentials.

Clock skew and credential expiry use the real clock (clients sign with real time), never
the service's (possibly travelled) clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from marketmeter.domain.models import AccessKey, Caller
from marketmeter.protocol.errors import ProtocolError
from marketmeter.protocol.sigv4 import (
    MSG_UNKNOWN_KEY,
    SignedRequest,
    SigV4Error,
    SigV4Verifier,
    UnrecognizedClient,
    credential_scope,
)

INVALID_TOKEN = MSG_UNKNOWN_KEY
EXPIRED_TOKEN = "The security token included in the request is expired"


class Authenticator:
    def __init__(
        self,
        lookup: Callable[[str], AccessKey | None],
        verifier: SigV4Verifier,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        stand_in: Callable[[str], AccessKey] | None = None,
    ) -> None:
        """`stand_in`: for an in-process mock only — an access key the catalog does not
        know is taken as the identity it returns, its signature unchecked (its secret is
        unknown), as moto takes any credentials."""
        self._lookup = lookup
        self._verifier = verifier
        self._now = now
        self._stand_in = stand_in

    def authenticate(self, request: SignedRequest) -> Caller:
        found: dict[str, AccessKey] = {}
        unknown: list[str] = []

        def secret_for(access_key_id: str) -> str | None:
            key = self._lookup(access_key_id) if _plausible_key_id(access_key_id) else None
            if key is None:  # (implausible ids: no such key can exist in the catalog)
                unknown.append(access_key_id)
                return None
            found[access_key_id] = key
            return key.secret_access_key

        try:
            signature = self._verifier.verify(request, secret_for)
        except UnrecognizedClient as exc:
            scope = credential_scope(request)
            if self._stand_in is not None and unknown and scope is not None:
                return Caller(access_key=self._stand_in(unknown[0]), region=scope[1])
            raise ProtocolError(exc.aws_type, exc.message) from None
        except SigV4Error as exc:
            raise ProtocolError(exc.aws_type, exc.message) from None
        key = found[signature.access_key_id]
        if signature.session_token != key.session_token:
            raise ProtocolError("UnrecognizedClientException", INVALID_TOKEN)
        if key.expires_at is not None and self._now() >= key.expires_at:
            raise ProtocolError("ExpiredTokenException", EXPIRED_TOKEN)
        return Caller(access_key=key, region=signature.region)


def _plausible_key_id(access_key_id: str) -> bool:
    return (
        16 <= len(access_key_id) <= 128
        and access_key_id.isascii()
        and access_key_id.isalnum()
        and access_key_id.upper() == access_key_id
    )
