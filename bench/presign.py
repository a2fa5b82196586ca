"""Pre-signed requests for the load generator: every request of a run is built, signed
(SigV4, as an SDK would) and written out before the run, so signing never limits the
generator. Each request is unique: a real insert, never an idempotent replay.

The output file holds raw HTTP/1.1 requests, each preceded by its length on a line of its
own; `replay.lua` makes wrk send them in order.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

SERVICE = "aws-marketplace"
TARGET_PREFIX = "AWSMPMeteringService."


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


class Signer:
    """SigV4 for POST / with a JSON body; signs content-type;host;x-amz-date;x-amz-target,
    exactly what botocore signs."""

    def __init__(self, host: str, region: str = "us-east-1", now: datetime | None = None) -> None:
        self.host = host
        self.region = region
        self.amz_date = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        self._keys: dict[str, bytes] = {}

    def _signing_key(self, secret: str) -> bytes:
        key = self._keys.get(secret)
        if key is None:
            k = hmac.new(
                f"AWS4{secret}".encode(), self.amz_date[:8].encode(), hashlib.sha256
            ).digest()
            for part in (self.region, SERVICE, "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            self._keys[secret] = key = k
        return key

    def request(self, credentials: Credentials, operation: str, payload: object) -> bytes:
        body = orjson.dumps(payload)
        target = TARGET_PREFIX + operation
        canonical = "\n".join(
            [
                "POST",
                "/",
                "",
                "content-type:application/x-amz-json-1.1",
                f"host:{self.host}",
                f"x-amz-date:{self.amz_date}",
                f"x-amz-target:{target}",
                "",
                "content-type;host;x-amz-date;x-amz-target",
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{self.amz_date[:8]}/{self.region}/{SERVICE}/aws4_request"
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                self.amz_date,
                scope,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        signature = hmac.new(
            self._signing_key(credentials.secret_access_key), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        head = (
            f"POST / HTTP/1.1\r\n"
            f"Host: {self.host}\r\n"
            f"Content-Type: application/x-amz-json-1.1\r\n"
            f"X-Amz-Target: {target}\r\n"
            f"X-Amz-Date: {self.amz_date}\r\n"
            f"Authorization: AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/{scope}, "
            f"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={signature}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"\r\n"
        )
        return head.encode() + body


def write_requests(path: Path, requests: Iterable[bytes]) -> int:
    """Length-prefixed raw requests; returns how many were written."""
    n = 0
    with path.open("wb") as out:
        for raw in requests:
            out.write(b"%d\n" % len(raw))
            out.write(raw)
            n += 1
    return n
