"""Hand-made HTTP requests for what an SDK will not send: bad signatures, bad JSON."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from unittest import mock

import orjson
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.compat.server import SESSION_TOKENS, Server


@contextmanager
def signing_time(at: datetime) -> Iterator[None]:
    """Sign as if the client's clock read `at` (botocore's clock is the outside world)."""
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
        yield


def signed_headers(
    server: Server,
    target: str | None,
    body: bytes,
    *,
    key: str = "seller",
    region: str = "us-east-1",
    service: str = "aws-marketplace",
    extra: dict[str, str] | None = None,
    path: str = "/",
) -> dict[str, str]:
    headers = {"Content-Type": "application/x-amz-json-1.1", **(extra or {})}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=server.url + path, data=body, headers=headers)
    key_id, secret, _ = server.keys[key]
    SigV4Auth(Credentials(key_id, secret, SESSION_TOKENS.get(key)), service, region).add_auth(
        request
    )
    return dict(request.headers.items())


def post(
    server: Server, headers: dict[str, str], body: bytes, path: str = "/"
) -> requests.Response:
    return requests.post(server.url + path, data=body, headers=headers, timeout=10)


def call(server: Server, operation: str, payload: Any, **kwargs: Any) -> requests.Response:
    """A correctly signed request with any JSON (or bytes) payload."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return post(
        server, signed_headers(server, f"AWSMPMeteringService.{operation}", body, **kwargs), body
    )


def assert_error(response: requests.Response, code: str, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["x-amzn-errortype"] == code
    assert response.headers["content-type"] == "application/x-amz-json-1.1"
    body = response.json()
    assert body["__type"] == code
    assert set(body) == {"__type", "message"}
    return str(body["message"])
