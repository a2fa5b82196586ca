"""Coverage-guided fuzzing (atheris) of the wire layer: SigV4 parsing and checking, JSON
decoding, validation and every operation of both APIs, in process (the application a
server runs, on a SQLite database of the demo catalog).

An input is: one byte choosing the operation, one choosing how the request is signed,
then the body (for mode 2, the Authorization header's value, a newline, then the body):

- mode 0: signed as an SDK signs it, with the demo seller's or buyer's key — the body
  reaches decoding, validation and the domain;
- mode 1: signed, then the signature's hex digits altered by the body's first bytes;
- mode 2: the Authorization header taken from the input as it is.

A failure is any 5xx answer, an exception out of the application, or an answer slower
than `SLOW_SECONDS`. Run `make fuzz` (FUZZ_SECONDS, 60 by default); the seed corpus in
`fuzz/corpus/wire/` is made from real boto3 requests by `python fuzz/seeds.py`. A found
input goes to `fuzz/crashes/`: once fixed, move it to `fuzz/corpus/wire/`, where
`tests/protocol/test_fuzz_corpus.py` runs every input on every test run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from marketmeter.demo import BUYER_KEY, SELLER_KEY, demo_catalog
from marketmeter.testing.inprocess import InProcessMarketplace

SLOW_SECONDS = 1.0
REGION = "us-east-1"
OPERATIONS = [
    ("AWSMPMeteringService", "MeterUsage", "metering.marketplace", "aws-marketplace", BUYER_KEY),
    (
        "AWSMPMeteringService",
        "BatchMeterUsage",
        "metering.marketplace",
        "aws-marketplace",
        SELLER_KEY,
    ),
    (
        "AWSMPMeteringService",
        "ResolveCustomer",
        "metering.marketplace",
        "aws-marketplace",
        SELLER_KEY,
    ),
    ("AWSMPMeteringService", "RegisterUsage", "metering.marketplace", "aws-marketplace", BUYER_KEY),
    (
        "AWSMPEntitlementService",
        "GetEntitlements",
        "entitlement.marketplace",
        "aws-marketplace",
        SELLER_KEY,
    ),
    (
        "AWSMPMeteringService",
        "NoSuchOperation",
        "metering.marketplace",
        "aws-marketplace",
        SELLER_KEY,
    ),
]

_market: InProcessMarketplace | None = None


def market() -> InProcessMarketplace:
    global _market  # noqa: PLW0603 - one marketplace for the whole run
    if _market is None:
        _market = InProcessMarketplace(demo_catalog(), any_credentials=False)
    return _market


def request_of(data: bytes) -> AWSRequest:
    if len(data) < 2:
        data = data + b"\0\0"
    prefix, operation, host, signing_name, key = OPERATIONS[data[0] % len(OPERATIONS)]
    mode, body = data[1] % 3, data[2:]
    header = b""
    if mode == 2:
        header, _, body = body.partition(b"\n")
    request = AWSRequest(
        method="POST",
        url=f"https://{host}.{REGION}.amazonaws.com/",
        data=body,
        headers={
            "X-Amz-Target": f"{prefix}.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    if mode in (0, 1):
        SigV4Auth(Credentials(*key), signing_name, REGION).add_auth(request)
    if mode == 1:
        authorization = str(request.headers["Authorization"])
        signed, _, signature = authorization.rpartition("Signature=")
        shifts = (body + bytes(64))[: len(signature)]
        altered = "".join(
            "0123456789abcdef"[(int(c, 16) + b) % 16]
            for c, b in zip(signature, shifts, strict=True)
        )
        request.headers.replace_header("Authorization", f"{signed}Signature={altered}")
    if mode == 2:
        request.headers["Authorization"] = header.decode("latin-1")
        request.headers["X-Amz-Date"] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return request


def TestOneInput(data: bytes) -> None:  # noqa: N802 - atheris's name
    prepared = request_of(data).prepare()
    started = time.monotonic()
    response = market().respond(prepared)
    took = time.monotonic() - started
    if response.status_code >= 500:
        raise RuntimeError(f"HTTP {response.status_code}: {response.content[:300]!r}")
    if took > SLOW_SECONDS:
        raise RuntimeError(f"answered in {took:.2f} s")


def main() -> None:
    import atheris  # (only to fuzz: the regression tests run the cases without it)

    Path(__file__).with_name("crashes").mkdir(exist_ok=True)
    atheris.instrument_all()
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
