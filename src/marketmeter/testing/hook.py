"""How boto3 calls reach an in-process marketplace: a `before-send` handler for the two
services, registered first among botocore's built-in handlers when this module is
imported — so every client made afterwards, in any thread, has it (before moto's, which
registers in the middle). A request is answered in-process only while a mock is active
and only when it goes to AWS's own endpoint of the service; a client given another
`endpoint_url` (a marketmeter server, LocalStack, anything) is left alone. Every other
service is untouched.

This module imports nothing but botocore: the pytest plugin imports it at start-up.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol
from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.handlers import BUILTIN_HANDLERS, REGISTER_FIRST

SERVICES = {
    "marketplace-metering": "metering.marketplace",
    "marketplace-entitlement-service": "entitlement.marketplace",
}
"""botocore's hyphenated service ids, and the first labels of their AWS hosts."""
ANSWERED_URL = "https://answered-in-process.marketmeter.invalid/"
AWS_DOMAINS = ("amazonaws.com", "amazonaws.com.cn", "api.aws", "c2s.ic.gov", "sc2s.sgov.gov")


class Responder(Protocol):
    def respond(self, request: AWSPreparedRequest) -> AWSResponse: ...


_active: list[Responder] = []
_lock = threading.Lock()


def activate(responder: Responder) -> None:
    """From now on (until `deactivate`), AWS-bound calls of both services go to it (the
    last activated wins while several are)."""
    with _lock:
        _active.append(responder)


def deactivate(responder: Responder) -> None:
    with _lock:
        if responder in _active:
            _active.remove(responder)


def active() -> Responder | None:
    with _lock:
        return _active[-1] if _active else None


def goes_to_aws(url: str, service: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    prefix = SERVICES[service]
    return host.startswith(prefix + ".") and host.endswith(tuple("." + d for d in AWS_DOMAINS))


def answer_in_process(request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse | None:
    responder = active()
    if responder is None:
        return None
    parts = event_name.split(".")
    service = parts[1] if len(parts) > 1 else ""
    if service not in SERVICES or not goes_to_aws(request.url, service):
        return None
    response = responder.respond(request)
    # botocore calls every handler of the event and takes the first answer: moto's, called
    # after this one, would answer the request too (and fail on members it does not know).
    # A request that was answered goes nowhere else: its URL says so to the handlers after.
    # (A retry is a new request, made from the original URL.)
    request.url = ANSWERED_URL
    return response


def _register() -> None:
    # On "before-send" itself, not on the services' own events: botocore calls the
    # handlers of a shorter event name first, and moto's is registered there.
    spec = ("before-send", answer_in_process, REGISTER_FIRST)
    if spec not in BUILTIN_HANDLERS:
        BUILTIN_HANDLERS.insert(0, spec)


_register()
