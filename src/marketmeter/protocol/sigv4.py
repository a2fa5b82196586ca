"""Server-side verification of AWS Signature Version 4 (header-based auth only).

This module owns everything between "an HTTP request arrived" and "this access key signed
it": parsing the ``Authorization`` header, the credential-scope and clock-skew checks, the
canonical request, signing-key derivation (with a bounded per-process cache) and the
constant-time signature comparison. Failures are raised as `SigV4Error` subclasses carrying
the AWS ``__type`` and the texts AWS's own front end uses.

It is deliberately self-contained: it knows nothing about access-key storage (the caller
passes ``secret_for``), session tokens or expiry (it only reports ``X-Amz-Security-Token``).
It must not import the domain, the store or any HTTP framework; only the standard library.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes

__all__ = [
    "IncompleteSignature",
    "InvalidSignature",
    "MissingAuthenticationToken",
    "SigV4Error",
    "SigV4Verifier",
    "SignedRequest",
    "UnrecognizedClient",
    "VerifiedSignature",
    "credential_scope",
]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"

MSG_MISSING_TOKEN = "Request is missing Authentication Token"
MSG_UNKNOWN_KEY = "The security token included in the request is invalid."
MSG_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
MSG_PAYLOAD_HASH = "The provided 'x-amz-content-sha256' header does not match what was computed."
MSG_HOST_UNSIGNED = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
MSG_NO_DATE = (
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
)

_HEX = frozenset("0123456789abcdefABCDEF")
_REQUIRED_PARAMS = ("Credential", "Signature", "SignedHeaders")


# --------------------------------------------------------------------------------------
# Public types


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """An HTTP request as received, in the form the verifier needs."""

    method: str
    raw_path: str  # still percent-encoded, as on the wire
    query_string: str  # without "?", percent-encoded as received ("" if none)
    headers: Sequence[tuple[str, str]]  # (lower-case name, value), in order; names may repeat
    body: bytes


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    access_key_id: str
    region: str
    signed_at: datetime  # tz-aware UTC
    session_token: str | None


class SigV4Error(Exception):
    """A request that failed authentication; ``aws_type`` is the AWS error ``__type``."""

    aws_type: str = "InvalidSignatureException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class MissingAuthenticationToken(SigV4Error):
    aws_type = "MissingAuthenticationTokenException"


class IncompleteSignature(SigV4Error):
    aws_type = "IncompleteSignatureException"


class InvalidSignature(SigV4Error):
    aws_type = "InvalidSignatureException"


class UnrecognizedClient(SigV4Error):
    aws_type = "UnrecognizedClientException"


# --------------------------------------------------------------------------------------
# Canonicalisation helpers (pure functions; also used by the tests)


def _wire_bytes(text: str) -> bytes:
    """The bytes a str taken off the wire stood for.

    The HTTP layer decodes raw paths and query strings as latin-1, so encoding back with
    latin-1 recovers the exact bytes; a str holding other characters is taken as UTF-8.
    """
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def canonical_uri(raw_path: str) -> str:
    """The canonical URI of a still-encoded request path, as AWS SDKs compute it.

    Empty and ``.`` segments are dropped, ``..`` pops one segment, a trailing ``/`` is
    kept when any segment remains, and the result is percent-encoded once more (safe
    ``/~``): outside S3, SigV4 double-encodes the path.
    """
    if raw_path == "/" or not raw_path:
        return "/"
    kept: list[str] = []
    for segment in raw_path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if kept:
                kept.pop()
        else:
            kept.append(segment)
    path = "/".join(kept)
    if raw_path[0] == "/":
        path = "/" + path
    if kept and raw_path[-1] == "/":
        path += "/"
    if path.isascii():
        return quote(path, safe="/~")
    return quote(_wire_bytes(path), safe="/~")


def _requote(component: str) -> str:
    # Query components are form-decoded ("+" is a space, as botocore sends params with
    # urlencode and signs them with %20) and re-encoded with RFC 3986 unreserved safe.
    if "+" in component:
        component = component.replace("+", " ")
    return quote(unquote_to_bytes(_wire_bytes(component)), safe="-_.~")


def canonical_query(query_string: str) -> str:
    """The canonical query string: decoded, re-encoded, sorted by (name, value)."""
    if not query_string:
        return ""
    pairs: list[tuple[str, str]] = []
    for part in query_string.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((_requote(name), _requote(value)))
    pairs.sort()
    return "&".join([f"{name}={value}" for name, value in pairs])


def _trimall(value: str) -> str:
    return " ".join(value.split())


def _format_amz_date(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _parse_amz_date(text: str) -> datetime | None:
    """``YYYYMMDDTHHMMSSZ`` to an aware UTC datetime, or None when malformed."""
    if len(text) != 16 or text[8] != "T" or text[15] != "Z":
        return None
    digits = text[:8] + text[9:15]
    if not (digits.isascii() and digits.isdigit()):
        return None
    try:
        return datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[9:11]),
            int(text[11:13]),
            int(text[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def _parse_http_date(text: str) -> datetime | None:
    """An RFC 7231 ``Date`` header to an aware UTC datetime, or None when malformed."""
    try:
        parsed = parsedate_to_datetime(text)
        if parsed.tzinfo is None:  # "-0000": UTC with no claim about the local zone
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _format_minutes(skew: timedelta) -> str:
    minutes = skew.total_seconds() / 60
    if minutes == int(minutes):
        return str(int(minutes))
    return f"{minutes:g}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------
# The verifier


class SigV4Verifier:
    """Verifies SigV4 ``Authorization`` headers for one service signing name.

    Safe to share between threads: the only mutable state is the signing-key cache, a
    plain dict whose racing evictions are tolerated, and the last date parsed, a pair
    replaced whole.
    """

    __slots__ = (
        "_cache",
        "_cache_size",
        "_last_date",
        "_max_skew",
        "_minutes",
        "_now",
        "_service",
    )

    def __init__(
        self,
        service: str = "aws-marketplace",
        max_skew: timedelta = timedelta(minutes=15),
        now: Callable[[], datetime] = _utcnow,
        key_cache_size: int = 4096,
    ) -> None:
        self._service = service
        self._max_skew = max_skew
        self._minutes = _format_minutes(max_skew)
        self._now = now
        self._cache_size = max(1, key_cache_size)
        self._cache: dict[tuple[str, str, str], bytes] = {}
        self._last_date: tuple[str, datetime | None] = ("", None)

    # -- signing key -------------------------------------------------------------------

    def _signing_key(self, secret: str, date: str, region: str) -> bytes:
        cache_key = (secret, date, region)
        key = self._cache.get(cache_key)
        if key is not None:
            return key
        key = hmac.digest(("AWS4" + secret).encode("utf-8"), date.encode("utf-8"), "sha256")
        key = hmac.digest(key, region.encode("utf-8"), "sha256")
        key = hmac.digest(key, self._service.encode("utf-8"), "sha256")
        key = hmac.digest(key, b"aws4_request", "sha256")
        cache = self._cache
        if len(cache) >= self._cache_size:
            # Evict the oldest entry. Another thread may be evicting or inserting at the
            # same time: tolerate an empty dict, a changed dict and an already-gone key.
            with contextlib.suppress(StopIteration, RuntimeError):
                cache.pop(next(iter(cache)), None)
        cache[cache_key] = key
        return key

    # -- verification ------------------------------------------------------------------

    def verify(
        self, request: SignedRequest, secret_for: Callable[[str], str | None]
    ) -> VerifiedSignature:
        headers = request.headers
        hmap = dict(headers)
        repeated: dict[str, list[str]] | None = None
        if len(hmap) != len(headers):
            hmap, repeated = _collect_repeated(headers)

        # 1. Is there an Authorization header at all?
        authorization = hmap.get("authorization")
        if authorization is None or not authorization.strip():
            raise MissingAuthenticationToken(MSG_MISSING_TOKEN)
        authorization = authorization.strip()

        amz_date = hmap.get("x-amz-date")
        http_date = hmap.get("date") if amz_date is None else None
        has_date = amz_date is not None or http_date is not None

        # 2. Is it complete?
        algorithm, _, rest = authorization.replace("\t", " ").partition(" ")
        params: dict[str, str] = {}
        if algorithm.startswith("AWS4-"):
            for token in rest.replace(",", " ").split():
                name, eq, value = token.partition("=")
                if not eq:
                    raise IncompleteSignature(
                        f"'{token}' not a valid key=value pair (missing equal-sign) in "
                        f"Authorization header: '{authorization}'."
                    )
                params.setdefault(name, value)
        credential = params.get("Credential", "")
        signature = params.get("Signature", "")
        signed_headers = params.get("SignedHeaders", "")
        if not (credential and signature and signed_headers and has_date):
            missing = "".join(
                f"Authorization header requires '{name}' parameter. "
                for name in _REQUIRED_PARAMS
                if not params.get(name)
            )
            if not has_date:
                missing += MSG_NO_DATE
            raise IncompleteSignature(f"{missing}Authorization={authorization}")
        if algorithm != ALGORITHM:
            raise IncompleteSignature(
                f"Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} for now). "
            )
        scope = credential.rstrip("/").split("/")
        if len(scope) != 5:
            raise IncompleteSignature(
                "Credential must have exactly 5 slash-delimited elements, "
                f"e.g. keyid/date/region/service/term, got '{credential}'"
            )
        if len(signature) != 64 or not _HEX.issuperset(signature):
            raise IncompleteSignature(
                f"Signature must be 64 hexadecimal characters, got '{signature}'. "
                f"Authorization={authorization}"
            )
        signed_names = signed_headers.lower().split(";")
        if "host" not in signed_names:
            raise IncompleteSignature(MSG_HOST_UNSIGNED)

        # 3. Date format and credential scope.
        if amz_date is not None:
            last_text, last_parsed = self._last_date  # requests of one second share it
            if amz_date == last_text:
                signed_at = last_parsed
            else:
                signed_at = _parse_amz_date(amz_date)
                self._last_date = (amz_date, signed_at)
            if signed_at is None:
                raise IncompleteSignature(
                    f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
                    "See http://en.wikipedia.org/wiki/ISO_8601"
                )
            timestamp = amz_date
        else:
            http_date = http_date or ""
            signed_at = _parse_http_date(http_date)
            if signed_at is None:
                raise IncompleteSignature(
                    f"Date must be in RFC 7231 format, e.g. 'Sun, 06 Nov 1994 08:49:37 GMT'. "
                    f"Got '{http_date}'."
                )
            timestamp = _format_amz_date(signed_at)
        access_key_id, scope_date, region, service, terminator = scope
        if not region or service != self._service or terminator != TERMINATOR:
            problems = ""
            if not region:
                problems += "Credential should be scoped to a valid region. "
            if service != self._service:
                problems += f"Credential should be scoped to correct service: '{self._service}'. "
            if terminator != TERMINATOR:
                problems += (
                    f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
                    f"not '{terminator}'. "
                )
            if scope_date != timestamp[:8]:
                problems += _date_scope_message(scope_date, timestamp)
            raise InvalidSignature(problems)
        if scope_date != timestamp[:8]:
            raise InvalidSignature(_date_scope_message(scope_date, timestamp))

        # 4. Clock skew, against the real clock, to the second.
        now = self._now()
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        now = now.replace(microsecond=0)
        skew = self._max_skew
        if signed_at < now - skew:
            raise InvalidSignature(
                f"Signature expired: {timestamp} is now earlier than "
                f"{_format_amz_date(now - skew)} ({_format_amz_date(now)} - {self._minutes} min.)"
            )
        if signed_at > now + skew:
            raise InvalidSignature(
                f"Signature not yet current: {timestamp} is still later than "
                f"{_format_amz_date(now + skew)} ({_format_amz_date(now)} + {self._minutes} min.)"
            )

        # 5. Who signed it?
        secret = secret_for(access_key_id)
        if secret is None:
            raise UnrecognizedClient(MSG_UNKNOWN_KEY)

        # 6. The payload.
        payload_hash = hashlib.sha256(request.body).hexdigest()
        claimed_hash = hmap.get("x-amz-content-sha256")
        if claimed_hash is not None and claimed_hash.strip().lower() != payload_hash:
            raise InvalidSignature(MSG_PAYLOAD_HASH)

        # 7. The signature.
        signed_names.sort()
        lines: list[str] = []
        for name in signed_names:
            if repeated is not None and name in repeated:
                value = ",".join([_trimall(v) for v in repeated[name]])
            else:
                raw = hmap.get(name)
                if raw is None:
                    raise InvalidSignature(
                        f"The header '{name}' is listed in SignedHeaders but is not present "
                        "in the request."
                    )
                value = _trimall(raw)
            lines.append(f"{name}:{value}\n")
        canonical_request = "\n".join(
            (
                request.method.upper(),
                canonical_uri(request.raw_path),
                canonical_query(request.query_string),
                "".join(lines),
                ";".join(signed_names),
                payload_hash,
            )
        )
        string_to_sign = (
            f"{ALGORITHM}\n{timestamp}\n{scope_date}/{region}/{service}/{TERMINATOR}\n"
            + hashlib.sha256(canonical_request.encode("utf-8", "replace")).hexdigest()
        )
        expected = hmac.digest(
            self._signing_key(secret, scope_date, region),
            string_to_sign.encode("utf-8"),
            "sha256",
        ).hex()
        if not hmac.compare_digest(expected, signature.lower()):
            raise InvalidSignature(MSG_MISMATCH)

        return VerifiedSignature(
            access_key_id=access_key_id,
            region=region,
            signed_at=signed_at,
            session_token=hmap.get("x-amz-security-token"),
        )


def credential_scope(request: SignedRequest) -> tuple[str, str] | None:
    """The access key id and Region a request's Authorization header names, unverified."""
    for name, value in request.headers:
        if name == "authorization":
            for token in value.replace(",", " ").split():
                if token.startswith("Credential="):
                    scope = token[len("Credential=") :].split("/")
                    if len(scope) == 5 and scope[0] and scope[2]:
                        return scope[0], scope[2]
    return None


def _date_scope_message(scope_date: str, timestamp: str) -> str:
    return (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
        f"from HTTP: '{scope_date}' != '{timestamp[:8]}', from '{timestamp}'."
    )


def _collect_repeated(
    headers: Sequence[tuple[str, str]],
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """First value of each header, plus every value of the headers that repeat."""
    first: dict[str, str] = {}
    every: dict[str, list[str]] = {}
    for name, value in headers:
        if name in first:
            every.setdefault(name, [first[name]]).append(value)
        else:
            first[name] = value
    return first, every
