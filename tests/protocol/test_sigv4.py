"""SigV4 verification against independent signers (botocore, requests-aws4auth, AWS's
published examples), plus every rejection path with AWS's own texts."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import quote, urlsplit

import botocore.auth
import botocore.credentials
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.utils import normalize_url_path
from requests_aws4auth import AWS4Auth

from marketmeter.protocol.sigv4 import (
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    SignedRequest,
    SigV4Error,
    SigV4Verifier,
    UnrecognizedClient,
    VerifiedSignature,
    canonical_query,
    canonical_uri,
)

SERVICE = "aws-marketplace"
AK = "AKIDMARKETMETER0001"
SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
ENDPOINT = "https://metering.marketplace.us-east-1.amazonaws.com"
TARGET = "AWSMPMeteringService.MeterUsage"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)

Headers = Sequence[tuple[str, str]]


# --------------------------------------------------------------------------------------
# Signing helpers


def _secrets(table: dict[str, str]) -> Callable[[str], str | None]:
    return table.get


def botocore_sign(
    url: str = ENDPOINT + "/",
    *,
    method: str = "POST",
    headers: Headers = (
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", TARGET),
    ),
    body: bytes = b"{}",
    params: list[tuple[str, str]] | None = None,
    region: str = "us-east-1",
    service: str = SERVICE,
    access_key: str = AK,
    secret_key: str = SK,
    token: str | None = None,
    when: datetime = T0,
) -> SignedRequest:
    """Sign with botocore's own SigV4Auth, then turn the result into what a server sees."""
    request = AWSRequest(method=method, url=url, data=body, params=params or {})
    for name, value in headers:
        request.headers[name] = value  # HTTPHeaders appends: repeated names stay repeated
    credentials = botocore.credentials.Credentials(access_key, secret_key, token)
    naive = when.astimezone(UTC).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=naive):
        botocore.auth.SigV4Auth(credentials, service, region).add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    wire: list[tuple[str, str]] = [("host", botocore.auth._host_from_url(prepared.url))]
    wire += [(name.lower(), value) for name, value in request.headers.items()]
    wire.append(("content-length", str(len(body))))  # added by the HTTP client, unsigned
    return SignedRequest(
        method=method,
        raw_path=parts.path,
        query_string=parts.query,
        headers=wire,
        body=body,
    )


def aws4auth_sign(
    url: str = ENDPOINT + "/",
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    body: bytes = b"{}",
    params: list[tuple[str, str]] | None = None,
    region: str = "us-east-1",
    token: str | None = None,
    when: datetime = T0,
) -> SignedRequest:
    """Sign with requests-aws4auth, an implementation independent of botocore.

    It takes the time from an ``x-amz-date`` header already on the request (else the
    clock), and signs host, content-type, date and every x-amz-* header.
    """
    all_headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET}
    all_headers.update(headers or {})
    all_headers["X-Amz-Date"] = when.strftime("%Y%m%dT%H%M%SZ")
    prepared = requests.Request(
        method, url, headers=all_headers, data=body, params=params or None
    ).prepare()
    kwargs: dict[str, Any] = {"session_token": token} if token else {}
    auth = AWS4Auth(AK, SK, region, SERVICE, **kwargs)
    prepared = auth(prepared)
    assert prepared.url is not None
    parts = urlsplit(prepared.url)
    wire = [("host", AWS4Auth.get_host_header(prepared.url))]
    wire += [(name.lower(), str(value)) for name, value in prepared.headers.items()]
    body_bytes = prepared.body if isinstance(prepared.body, bytes) else b""
    return SignedRequest(method, parts.path, parts.query, wire, body_bytes)


def verifier_at(now: datetime, **kwargs: Any) -> SigV4Verifier:
    return SigV4Verifier(now=lambda: now, **kwargs)


def verify(
    request: SignedRequest,
    now: datetime = T0,
    secrets: dict[str, str] | None = None,
    **kwargs: Any,
) -> VerifiedSignature:
    return verifier_at(now, **kwargs).verify(request, _secrets(secrets or {AK: SK}))


def with_header(request: SignedRequest, name: str, value: str | None) -> SignedRequest:
    """Replace every value of ``name`` (drop it when value is None; add it if absent)."""
    kept = [(n, v) for n, v in request.headers if n != name]
    if value is not None:
        kept.append((name, value))
    return dataclasses.replace(request, headers=kept)


def header(request: SignedRequest, name: str) -> str:
    return next(v for n, v in request.headers if n == name)


def expect(
    error: type[SigV4Error],
    request: SignedRequest,
    now: datetime = T0,
    secrets: dict[str, str] | None = None,
    **kwargs: Any,
) -> str:
    with pytest.raises(error) as caught:
        verify(request, now, secrets, **kwargs)
    assert type(caught.value) is error
    assert str(caught.value) == caught.value.message
    return caught.value.message


# --------------------------------------------------------------------------------------
# Agreement with botocore: a few hundred varied signed requests

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1"]
BODIES = [
    b"",
    json.dumps({"ProductCode": "prod-1", "UsageDimension": "users", "UsageQuantity": 3}).encode(),
    json.dumps({"name": "ünïcødé ✓ 日本語 🚀"}, ensure_ascii=False).encode("utf-8"),
    random.Random(7).randbytes(1 << 20),
]
PATHS = ["/", "/a/b", "/a%20b", "/a/./b/../c", "//double", "/a/b/", "/~user/x%2Fy", "/./"]
URL_QUERIES = [
    "",
    "a=1&b=2",
    "b=2&a=1",
    "k=v2&k=v1&k=v10",
    "empty=&x=1",
    "flag",
    "q=%2F%3A%40%26%3D%2B%20%C3%A9",
    "Action=MeterUsage&Version=2016-01-14",
]
PARAM_QUERIES: list[list[tuple[str, str]]] = [
    [("q", "a b/c+d")],
    [("k", "2"), ("k", "1"), ("e", "")],
    [("reserved", "!*'();:@&=+$,/?#[]"), ("unicode", "é日")],
]
EXTRA_HEADERS: list[list[tuple[str, str]]] = [
    [],
    [("X-Custom", "  a   b \t c  ")],
    [("X-Rep", "one"), ("X-Rep", "two   three")],
    [("User-Agent", "Boto3/1.44 md/Botocore#1.44 ua/2.1 os/linux"), ("X-Amz-Meta", "m")],
    [("Date", "placeholder")],  # botocore then signs with Date instead of X-Amz-Date
]
TOKENS = [None, "FQoGZXIvYXdzEJr//////////wEaDGV4YW1wbGV0b2tlbg=="]
SIGN_TIMES = [
    datetime(2021, 5, 2, 14, 40, 40, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2024, 2, 29, 8, 7, 6, tzinfo=UTC),
]


def _botocore_cases(count: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(20260101)
    for index in range(count):
        case: dict[str, Any] = {
            "region": REGIONS[index % len(REGIONS)],
            "body": BODIES[3] if index % 50 == 0 else rng.choice(BODIES[:3]),
            "token": TOKENS[index % 2],
            "when": rng.choice(SIGN_TIMES) + timedelta(seconds=rng.randrange(0, 3600)),
            "skew": timedelta(seconds=rng.randrange(-14 * 60, 14 * 60)),
            "method": "GET" if index % 7 == 3 else "POST",
            "host": rng.choice([ENDPOINT, "http://localhost:8080", "https://Example.COM:443"]),
            "path": PATHS[index % len(PATHS)],
            "extra": rng.choice(EXTRA_HEADERS),
        }
        if index % 3 == 0:
            case["params"] = rng.choice(PARAM_QUERIES)
            case["query"] = ""
        else:
            case["params"] = None
            case["query"] = URL_QUERIES[index % len(URL_QUERIES)]
        if index % 11 == 5:
            case["extra"] = [*case["extra"], ("X-Amz-Content-SHA256", "computed")]
        yield case


@pytest.mark.parametrize("case", list(_botocore_cases(240)))
def test_agrees_with_botocore(case: dict[str, Any]) -> None:
    body: bytes = case["body"]
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", TARGET),
        *[
            (n, hashlib.sha256(body).hexdigest() if v == "computed" else v)
            for n, v in case["extra"]
        ],
    ]
    url = case["host"] + case["path"] + ("?" + case["query"] if case["query"] else "")
    request = botocore_sign(
        url,
        method=case["method"],
        headers=headers,
        body=body,
        params=case["params"],
        region=case["region"],
        token=case["token"],
        when=case["when"],
    )
    result = verify(request, now=case["when"] + case["skew"])
    assert result == VerifiedSignature(AK, case["region"], case["when"], case["token"])
    assert result.signed_at.tzinfo is not None


def test_botocore_cases_cover_the_brief() -> None:
    cases = list(_botocore_cases(240))
    assert {c["region"] for c in cases} == set(REGIONS)
    assert {c["path"] for c in cases} == set(PATHS)
    assert {c["query"] for c in cases} == set(URL_QUERIES)
    assert any(len(c["body"]) == 1 << 20 for c in cases)
    assert all(any(c["extra"] == extra for c in cases) for extra in EXTRA_HEADERS)
    assert {c["token"] for c in cases} == set(TOKENS)


def test_botocore_date_header_path_is_really_exercised() -> None:
    request = botocore_sign(headers=[("Date", "x")], when=T0)
    names = [n for n, _ in request.headers]
    assert "x-amz-date" not in names
    assert header(request, "date") == "Thu, 01 Jan 2026 12:00:00 -0000"
    assert "SignedHeaders=date;host" in header(request, "authorization")
    assert verify(request).signed_at == T0


def test_botocore_repeated_headers_are_signed_as_repeated() -> None:
    request = botocore_sign(headers=[("X-Rep", "one"), ("X-Rep", " two  three ")])
    assert [v for n, v in request.headers if n == "x-rep"] == ["one", " two  three "]
    verify(request)
    # Order of repeated values is significant; so is each value.
    swapped = [(n, v) for n, v in request.headers if n != "x-rep"]
    swapped += [("x-rep", " two  three "), ("x-rep", "one")]
    assert expect(InvalidSignature, dataclasses.replace(request, headers=swapped)) == MISMATCH
    dropped = [(n, v) for n, v in request.headers if (n, v) != ("x-rep", "one")]
    assert expect(InvalidSignature, dataclasses.replace(request, headers=dropped)) == MISMATCH


# --------------------------------------------------------------------------------------
# Agreement with requests-aws4auth


AWS4AUTH_CASES = [
    {},
    {"region": "eu-west-1", "body": b""},
    {"region": "cn-north-1", "token": "session-token-value"},
    {"url": "http://localhost:8080/a/./b/../c/", "method": "GET", "body": b""},
    {"url": ENDPOINT + "//double", "params": [("q", "a b/c+d"), ("k", "2"), ("k", "1")]},
    {"url": ENDPOINT + "/a%20b?x=%2F&y=", "body": "héllo wörld".encode()},
    {"params": [("reserved", "!*'();:@&=+$,/?#[]"), ("unicode", "é日"), ("e", "")]},
    {"headers": {"X-Amz-Meta-Note": "lots   of \t  space"}, "body": BODIES[3]},
    {"when": datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "region": "ap-southeast-2"},
]


@pytest.mark.parametrize("case", AWS4AUTH_CASES)
def test_agrees_with_requests_aws4auth(case: dict[str, Any]) -> None:
    when = case.get("when", T0)
    request = aws4auth_sign(**{"when": T0, **case})
    assert "x-amz-content-sha256" in dict(request.headers)
    result = verify(request, now=when)
    assert result.region == case.get("region", "us-east-1")
    assert result.session_token == case.get("token")
    assert result.signed_at == when


# --------------------------------------------------------------------------------------
# AWS's published examples (the SigV4 test suite and the IAM documentation example)


def test_aws_test_suite_get_vanilla() -> None:
    request = SignedRequest(
        "GET",
        "/",
        "",
        [
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                "aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf19"
                "42676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
        ],
        b"",
    )
    now = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
    result = SigV4Verifier("service", now=lambda: now).verify(
        request, _secrets({"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"})
    )
    assert result == VerifiedSignature("AKIDEXAMPLE", "us-east-1", now, None)


def test_aws_documentation_iam_list_users() -> None:
    request = SignedRequest(
        "GET",
        "/",
        "Action=ListUsers&Version=2010-05-08",
        [
            ("host", "iam.amazonaws.com"),
            ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
                "SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0"
                "855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
            ),
        ],
        b"",
    )
    now = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
    SigV4Verifier("iam", now=lambda: now).verify(
        request, _secrets({"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"})
    )


# --------------------------------------------------------------------------------------
# Canonicalisation helpers against the reference implementations


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "//",
        "/./",
        "/..",
        "/a/b",
        "/a/b/",
        "/a%20b",
        "/a/./b/../c",
        "/a/./b/../c/",
        "//double//slash//",
        "/../../x",
        "/a/../",
        "/%7Euser/~x/%2F/",
        "/a b/:@!$&'()*+,;=",
        "relative/path",
    ],
)
def test_canonical_uri_matches_botocore(path: str) -> None:
    assert canonical_uri(path) == quote(normalize_url_path(path), safe="/~")


def test_non_ascii_path_is_taken_as_latin1_decoded_wire_bytes() -> None:
    # The endpoint decodes the raw path as latin-1: the bytes the client sent are what
    # gets re-encoded, exactly as the client (which encodes its str path as UTF-8) did.
    client_path = "/café/日本"
    wire = client_path.encode("utf-8").decode("latin-1")
    assert canonical_uri(wire) == quote(normalize_url_path(client_path), safe="/~")
    assert canonical_uri("/日本") == quote("/日本", safe="/~")  # not latin-1: taken as UTF-8


@pytest.mark.parametrize(
    "query",
    ["q=café", "k=日本"],
)
def test_non_ascii_query_is_taken_as_latin1_decoded_wire_bytes(query: str) -> None:
    wire = query.encode("utf-8").decode("latin-1")
    assert canonical_query(wire) == AWS4Auth.amz_cano_querystring(query)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "a=1",
        "b=2&a=1",
        "a=2&a=1&a=10",
        "e=&f",
        "q=a+b%20c",
        "x=%2f%3a",
        "r=!*'();:@$,/?[]",
        "u=%C3%A9%E6%97%A5",
        "a=b=c",
        "-_.~=-_.~",
    ],
)
def test_canonical_query_matches_requests_aws4auth(query: str) -> None:
    assert canonical_query(query) == AWS4Auth.amz_cano_querystring(query)


def test_canonical_query_sorts_by_name_then_value() -> None:
    # A plain string sort would put "a-b=1" first ("-" < "=").
    assert canonical_query("a-b=1&a=z") == "a=z&a-b=1"
    assert canonical_query("a=1&&b=2&") == "a=1&b=2"


# --------------------------------------------------------------------------------------
# Rejections: missing and incomplete authentication


def test_no_authorization_header() -> None:
    request = with_header(botocore_sign(), "authorization", None)
    assert expect(MissingAuthenticationToken, request) == "Request is missing Authentication Token"
    empty = with_header(request, "authorization", "   ")
    assert expect(MissingAuthenticationToken, empty) == "Request is missing Authentication Token"


def _auth_parts(request: SignedRequest) -> tuple[str, str, str]:
    value = header(request, "authorization")
    params = dict(p.split("=", 1) for p in value.split(" ", 1)[1].split(", "))
    return params["Credential"], params["SignedHeaders"], params["Signature"]


@pytest.mark.parametrize(
    ("template", "missing"),
    [
        ("AWS4-HMAC-SHA256 SignedHeaders={h}, Signature={s}", ["Credential"]),
        ("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}", ["Signature"]),
        ("AWS4-HMAC-SHA256 Credential={c}, Signature={s}", ["SignedHeaders"]),
        ("AWS4-HMAC-SHA256 SignedHeaders={h}", ["Credential", "Signature"]),
        ("AWS4-HMAC-SHA256 Credential=, SignedHeaders={h}, Signature={s}", ["Credential"]),
        ("AWS4-HMAC-SHA256", ["Credential", "Signature", "SignedHeaders"]),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", ["Credential", "Signature", "SignedHeaders"]),
    ],
)
def test_missing_parameters(template: str, missing: list[str]) -> None:
    request = botocore_sign()
    c, h, s = _auth_parts(request)
    value = template.format(c=c, h=h, s=s)
    message = expect(IncompleteSignature, with_header(request, "authorization", value))
    expected = "".join(f"Authorization header requires '{p}' parameter. " for p in missing)
    assert message == expected + "Authorization=" + value


def test_missing_date_header() -> None:
    request = with_header(botocore_sign(), "x-amz-date", None)
    value = header(request, "authorization")
    assert expect(IncompleteSignature, request) == (
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=" + value
    )
    # Missing parameters and the missing date are reported together.
    partial = with_header(request, "authorization", "AWS4-HMAC-SHA256 Credential=a/b/c/d/e")
    assert expect(IncompleteSignature, partial) == (
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=AWS4-HMAC-SHA256 Credential=a/b/c/d/e"
    )


def test_parameter_without_equal_sign() -> None:
    request = botocore_sign()
    c, h, s = _auth_parts(request)
    value = f"AWS4-HMAC-SHA256 Credential= {c}, SignedHeaders={h}, Signature={s}"
    assert expect(IncompleteSignature, with_header(request, "authorization", value)) == (
        f"'{c}' not a valid key=value pair (missing equal-sign) in Authorization header: '{value}'."
    )


def test_unsupported_algorithm() -> None:
    request = botocore_sign()
    value = header(request, "authorization").replace("SHA256", "SHA512", 1)
    assert expect(IncompleteSignature, with_header(request, "authorization", value)) == (
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). "
    )


@pytest.mark.parametrize(
    "credential", [f"{AK}/20260101/us-east-1/aws-marketplace", f"{AK}", "a/b/c/d/e/f"]
)
def test_credential_not_five_parts(credential: str) -> None:
    request = botocore_sign()
    _, h, s = _auth_parts(request)
    value = f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={h}, Signature={s}"
    assert expect(IncompleteSignature, with_header(request, "authorization", value)) == (
        "Credential must have exactly 5 slash-delimited elements, "
        f"e.g. keyid/date/region/service/term, got '{credential}'"
    )


@pytest.mark.parametrize("signature", ["abc123", "g" * 64, "0" * 63, "0" * 65])
def test_signature_not_64_hex(signature: str) -> None:
    request = botocore_sign()
    c, h, _ = _auth_parts(request)
    value = f"AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={signature}"
    message = expect(IncompleteSignature, with_header(request, "authorization", value))
    assert message.startswith(f"Signature must be 64 hexadecimal characters, got '{signature}'")


def test_host_must_be_signed() -> None:
    request = botocore_sign()
    c, h, s = _auth_parts(request)
    value = (
        f"AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h.replace('host;', '')}, Signature={s}"
    )
    assert expect(IncompleteSignature, with_header(request, "authorization", value)) == (
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    )


def test_malformed_dates() -> None:
    request = botocore_sign()
    bad = with_header(request, "x-amz-date", "2026-01-01T12:00:00Z")
    assert expect(IncompleteSignature, bad) == (
        "Date must be in ISO-8601 'basic format'. Got '2026-01-01T12:00:00Z'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )
    impossible = with_header(request, "x-amz-date", "20260230T120000Z")
    assert "Got '20260230T120000Z'" in expect(IncompleteSignature, impossible)
    http = with_header(botocore_sign(headers=[("Date", "x")]), "date", "yesterday")
    assert "Got 'yesterday'" in expect(IncompleteSignature, http)


@pytest.mark.parametrize(
    "value",
    [
        "AWS4-HMAC-SHA256 Credential={c},SignedHeaders={h},Signature={s}",
        "AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}",
        "AWS4-HMAC-SHA256   Credential={c} ,  SignedHeaders={h},\tSignature={s}  ",
        "AWS4-HMAC-SHA256 Signature={s}, Credential={c}, SignedHeaders={h}",
        "AWS4-HMAC-SHA256\tCredential={c},\tSignedHeaders={h},\tSignature={s}",
    ],
)
def test_authorization_whitespace_variants(value: str) -> None:
    request = botocore_sign()
    c, h, s = _auth_parts(request)
    verify(with_header(request, "authorization", value.format(c=c, h=h, s=s)))


# --------------------------------------------------------------------------------------
# Rejections: credential scope and clock skew


def test_wrong_service() -> None:
    request = botocore_sign(service="execute-api")
    assert expect(InvalidSignature, request) == (
        "Credential should be scoped to correct service: 'aws-marketplace'. "
    )


def test_wrong_terminator() -> None:
    request = botocore_sign()
    value = header(request, "authorization").replace("/aws4_request,", "/xyz,")
    assert expect(InvalidSignature, with_header(request, "authorization", value)) == (
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'xyz'. "
    )


def test_scope_date_differs_from_request_date() -> None:
    request = botocore_sign(when=datetime(2026, 1, 2, tzinfo=UTC))
    value = header(request, "authorization").replace("/20260102/", "/20260101/")
    now = datetime(2026, 1, 2, tzinfo=UTC)
    assert expect(InvalidSignature, with_header(request, "authorization", value), now) == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20260101' != '20260102', from '20260102T000000Z'."
    )


def test_empty_region() -> None:
    assert expect(InvalidSignature, botocore_sign(region="")) == (
        "Credential should be scoped to a valid region. "
    )


def test_several_scope_problems_are_reported_together() -> None:
    request = botocore_sign(region="", service="s3")
    value = header(request, "authorization").replace("/20260101/", "/20251231/")
    value = value.replace("/aws4_request,", "/aws5_request,")
    assert expect(InvalidSignature, with_header(request, "authorization", value)) == (
        "Credential should be scoped to a valid region. "
        "Credential should be scoped to correct service: 'aws-marketplace'. "
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20251231' != '20260101', from '20260101T120000Z'."
    )


def test_signature_expired_exact_aws_text() -> None:
    signed = datetime(2021, 5, 2, 14, 40, 40, tzinfo=UTC)
    now = datetime(2021, 5, 2, 17, 46, 43, 512000, tzinfo=UTC)
    assert expect(InvalidSignature, botocore_sign(when=signed), now) == (
        "Signature expired: 20210502T144040Z is now earlier than 20210502T173143Z "
        "(20210502T174643Z - 15 min.)"
    )


def test_signature_not_yet_current_exact_aws_text() -> None:
    signed = datetime(2021, 5, 2, 19, 46, 40, tzinfo=UTC)
    now = datetime(2021, 5, 2, 17, 46, 43, tzinfo=UTC)
    assert expect(InvalidSignature, botocore_sign(when=signed), now) == (
        "Signature not yet current: 20210502T194640Z is still later than 20210502T180143Z "
        "(20210502T174643Z + 15 min.)"
    )


@pytest.mark.parametrize("minutes", [-16, 16])
def test_sixteen_minutes_off_is_rejected(minutes: int) -> None:
    now = T0 + timedelta(minutes=minutes)
    message = expect(InvalidSignature, botocore_sign(when=T0), now)
    if minutes > 0:
        assert message == (
            "Signature expired: 20260101T120000Z is now earlier than 20260101T120100Z "
            "(20260101T121600Z - 15 min.)"
        )
    else:
        assert message == (
            "Signature not yet current: 20260101T120000Z is still later than 20260101T115900Z "
            "(20260101T114400Z + 15 min.)"
        )


@pytest.mark.parametrize(
    "offset",
    [
        timedelta(minutes=-15),
        timedelta(minutes=-14),
        timedelta(0),
        timedelta(minutes=14),
        timedelta(minutes=15),
        timedelta(minutes=15, microseconds=999_999),  # "now" counts in whole seconds
    ],
)
def test_skew_within_limit_is_accepted(offset: timedelta) -> None:
    verify(botocore_sign(when=T0), now=T0 + offset)


@pytest.mark.parametrize("seconds", [-15 * 60 - 1, 15 * 60 + 1])
def test_one_second_past_the_limit_is_rejected(seconds: int) -> None:
    expect(InvalidSignature, botocore_sign(when=T0), T0 + timedelta(seconds=seconds))


def test_custom_skew_is_in_the_message() -> None:
    now = T0 + timedelta(minutes=6)
    message = expect(InvalidSignature, botocore_sign(), now, max_skew=timedelta(minutes=5))
    assert message.endswith("(20260101T120600Z - 5 min.)")


def test_naive_now_is_taken_as_utc() -> None:
    verify(botocore_sign(), now=T0.replace(tzinfo=None))


def test_skew_is_checked_before_the_access_key() -> None:
    now = T0 + timedelta(hours=1)
    assert expect(InvalidSignature, botocore_sign(), now, secrets={}).startswith(
        "Signature expired"
    )


# --------------------------------------------------------------------------------------
# Rejections: key, payload and signature


def test_unknown_access_key() -> None:
    request = botocore_sign(access_key="AKIDUNKNOWN")
    assert expect(UnrecognizedClient, request) == (
        "The security token included in the request is invalid."
    )
    # Reported before anything about the payload or the signature.
    tampered = dataclasses.replace(request, body=b"changed")
    assert expect(UnrecognizedClient, tampered).startswith("The security token")


def test_wrong_secret() -> None:
    request = botocore_sign(secret_key="not-the-secret")
    assert expect(InvalidSignature, request) == MISMATCH


def test_body_changed_after_signing() -> None:
    request = botocore_sign(body=b'{"UsageQuantity": 1}')
    assert expect(InvalidSignature, dataclasses.replace(request, body=b'{"UsageQuantity": 9}')) == (
        MISMATCH
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-amz-target", "AWSMPMeteringService.BatchMeterUsage"),
        ("content-type", "application/json"),
        ("host", "evil.example.com"),
        ("x-amz-security-token", "another-token"),
    ],
)
def test_signed_header_changed(name: str, value: str) -> None:
    request = botocore_sign(token="a-token")
    assert expect(InvalidSignature, with_header(request, name, value)) == MISMATCH


def test_signed_header_whitespace_is_canonicalised() -> None:
    request = botocore_sign(headers=[("X-Amz-Target", TARGET), ("X-Note", "a b")])
    verify(with_header(request, "x-note", "  a \t   b "))


@pytest.mark.parametrize(
    "change",
    [
        {"method": "PUT"},
        {"raw_path": "/other"},
        {"query_string": "a=1"},
    ],
)
def test_request_line_changed(change: dict[str, Any]) -> None:
    request = botocore_sign()
    assert expect(InvalidSignature, dataclasses.replace(request, **change)) == MISMATCH


def test_equivalent_paths_still_verify() -> None:
    request = botocore_sign(ENDPOINT + "/a/b")
    verify(dataclasses.replace(request, raw_path="/a/./x/../b"))
    verify(dataclasses.replace(request, raw_path="//a//b"))


def test_extra_unsigned_header_still_verifies() -> None:
    request = botocore_sign()
    extended = [*request.headers, ("x-forwarded-for", "10.0.0.1"), ("x-amz-extra", "1")]
    verify(dataclasses.replace(request, headers=extended))


def test_signed_header_missing_from_request() -> None:
    request = with_header(botocore_sign(), "x-amz-target", None)
    assert expect(InvalidSignature, request) == (
        "The header 'x-amz-target' is listed in SignedHeaders but is not present in the request."
    )


def test_content_sha256_mismatch() -> None:
    body = b'{"a": 1}'
    request = botocore_sign(
        headers=[("X-Amz-Content-SHA256", hashlib.sha256(body).hexdigest())], body=body
    )
    verify(request)
    assert expect(InvalidSignature, dataclasses.replace(request, body=b'{"a": 2}')) == (
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    )
    wrong = botocore_sign(headers=[("X-Amz-Content-SHA256", "0" * 64)], body=body)
    assert expect(InvalidSignature, wrong) == (
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    )


def test_signature_case_is_ignored() -> None:
    request = botocore_sign()
    c, h, s = _auth_parts(request)
    value = f"AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s.upper()}"
    verify(with_header(request, "authorization", value))


def test_session_token_reported() -> None:
    assert verify(botocore_sign(token="tok/en+=")).session_token == "tok/en+="
    assert verify(botocore_sign()).session_token is None


def test_error_types() -> None:
    assert MissingAuthenticationToken.aws_type == "MissingAuthenticationTokenException"
    assert IncompleteSignature.aws_type == "IncompleteSignatureException"
    assert InvalidSignature.aws_type == "InvalidSignatureException"
    assert UnrecognizedClient.aws_type == "UnrecognizedClientException"
    error = InvalidSignature("text")
    assert isinstance(error, SigV4Error)
    assert error.message == str(error) == "text"


# --------------------------------------------------------------------------------------
# The signing-key cache


def test_cache_does_not_change_results() -> None:
    verifier = verifier_at(T0)
    request = botocore_sign()
    first = verifier.verify(request, _secrets({AK: SK}))
    assert verifier.verify(request, _secrets({AK: SK})) == first
    tampered = dataclasses.replace(request, body=b"x")
    with pytest.raises(InvalidSignature):
        verifier.verify(tampered, _secrets({AK: SK}))
    assert verifier.verify(request, _secrets({AK: SK})) == first


def test_rotated_secret_for_the_same_key_id() -> None:
    verifier = verifier_at(T0)
    old = botocore_sign(secret_key="secret-one")
    new = botocore_sign(secret_key="secret-two")
    table = {AK: "secret-one"}
    verifier.verify(old, table.get)
    with pytest.raises(InvalidSignature):
        verifier.verify(new, table.get)
    table[AK] = "secret-two"
    verifier.verify(new, table.get)
    with pytest.raises(InvalidSignature):
        verifier.verify(old, table.get)


def test_bounded_cache_evicts_and_stays_correct() -> None:
    verifier = verifier_at(T0, key_cache_size=2)
    requests_by_region = {region: botocore_sign(region=region) for region in REGIONS}
    for _ in range(3):
        for region, request in requests_by_region.items():
            assert verifier.verify(request, _secrets({AK: SK})).region == region
    assert len(verifier._cache) <= 2


def test_concurrent_use_with_a_tiny_cache() -> None:
    verifier = verifier_at(T0, key_cache_size=1)
    signed = [
        (botocore_sign(region=region, secret_key=f"s{i}"), {AK: f"s{i}"})
        for i, region in enumerate(REGIONS * 2)
    ]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                for request, table in signed:
                    verifier.verify(request, table.get)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
