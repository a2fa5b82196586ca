"""The JSON 1.1 wire: routing, body limits, unreadable input, timestamps, headers."""

from __future__ import annotations

import socket
import time
import uuid
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import orjson
import pytest
import requests

from tests.compat.conftest import Fresh, recent
from tests.compat.raw import assert_error, call, post, signed_headers
from tests.compat.server import Server
from tests.factories import AMI, CONTAINER, SAAS

pytestmark = pytest.mark.compat


def test_success_headers(server: Server, fresh: Fresh) -> None:
    response = call(
        server,
        "MeterUsage",
        {"ProductCode": AMI, "Timestamp": int(recent().timestamp()), "UsageDimension": "gb"},
        key=fresh.buyer_key(),
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-amz-json-1.1"
    first_id = response.headers["x-amzn-requestid"]
    assert str(uuid.UUID(first_id)) == first_id
    again = call(server, "DeleteEverything", {})
    assert again.headers["x-amzn-requestid"] not in {first_id, ""}
    date = parsedate_to_datetime(response.headers["date"])
    assert abs((datetime.now(UTC) - date).total_seconds()) < 60
    assert set(response.json()) == {"MeteringRecordId"}


def test_an_unknown_operation(server: Server) -> None:
    response = call(server, "DeleteEverything", {})
    assert "DeleteEverything" in assert_error(response, "UnknownOperationException", 400)


def test_a_missing_target(server: Server) -> None:
    body = b"{}"
    response = post(server, signed_headers(server, None, body), body)
    assert_error(response, "UnknownOperationException", 400)


@pytest.mark.parametrize(
    "body", [b"{not json", b"[1, 2]", b'{"RegistrationToken": "\xff\xfe"}', b"\x00"]
)
def test_unreadable_json_is_a_serialization_exception(server: Server, body: bytes) -> None:
    response = call(server, "ResolveCustomer", body)
    assert_error(response, "SerializationException", 400)


def test_a_wrong_member_type_is_a_serialization_exception(server: Server, fresh: Fresh) -> None:
    before = server.record_count()
    record = {
        "Timestamp": int(recent().timestamp()),
        "CustomerAWSAccountId": fresh.customer()[0],
        "Dimension": "users",
        "Quantity": "5",
    }
    response = call(server, "BatchMeterUsage", {"ProductCode": SAAS, "UsageRecords": [record]})
    assert "'usageRecords.1.member.quantity'" in assert_error(
        response, "SerializationException", 400
    )
    assert server.record_count() == before


def test_an_empty_body_is_read_as_an_empty_request(server: Server) -> None:
    response = call(server, "ResolveCustomer", b"")
    message = assert_error(response, "ValidationException", 400)
    assert (
        message
        == "1 validation error detected: Value null at 'registrationToken' failed to satisfy constraint: Member must not be null"
    )


def test_a_body_over_one_megabyte_is_413(server: Server) -> None:
    body = b'{"RegistrationToken": "' + b"x" * (1024 * 1024) + b'"}'
    response = call(server, "ResolveCustomer", body)
    assert_error(response, "RequestEntityTooLargeException", 413)


def test_an_oversized_body_is_refused_without_reading_it(server: Server) -> None:
    # Announce 50 MB, send 10 bytes, and expect the answer at once.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: AWSMPMeteringService.ResolveCustomer\r\nContent-Length: 52428800\r\n\r\n"
            b'{"Registr'
        )
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"RequestEntityTooLargeException" in reply


def test_a_chunked_body_over_one_megabyte_is_413_and_ends_the_connection(server: Server) -> None:
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: AWSMPMeteringService.ResolveCustomer\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 17  # 1.06 MB, no end
        )
        reply = b""
        while part := sock.recv(65536):  # until the server closes the connection
            reply += part
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in reply.lower()
    assert b"RequestEntityTooLargeException" in reply


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (lambda t: t + 0.123, ".123Z"),  # fractional epoch seconds (JavaScript, Java, Go)
        (lambda t: f"{t}.5", ".500Z"),  # a numeric string
        (lambda t: datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z"), ".000Z"),
        (lambda t: t, ".000Z"),  # integer seconds (botocore, the AWS CLI)
    ],
)
def test_timestamps_are_read_in_every_form_and_echoed_as_numbers(
    server: Server, fresh: Fresh, sent, stored: str
) -> None:  # type: ignore[no-untyped-def]
    t = int(recent().timestamp())
    record = {
        "Timestamp": sent(t),
        "CustomerAWSAccountId": fresh.customer()[0],
        "Dimension": "users",
    }
    response = call(server, "BatchMeterUsage", {"ProductCode": SAAS, "UsageRecords": [record]})
    assert response.status_code == 200, response.text
    result = response.json()["Results"][0]
    assert isinstance(result["UsageRecord"]["Timestamp"], int | float)
    assert int(result["UsageRecord"]["Timestamp"]) == t
    [row] = [r for r in server.records(SAAS) if r["MeteringRecordId"] == result["MeteringRecordId"]]
    assert row["Timestamp"].endswith(stored)


def test_null_members_are_treated_as_absent(server: Server, fresh: Fresh) -> None:
    payload = {
        "ProductCode": AMI,
        "Timestamp": int(recent().timestamp()),
        "UsageDimension": "gb",
        "UsageAllocations": None,
        "ClientToken": None,
    }
    response = call(server, "MeterUsage", payload, key=fresh.buyer_key())
    assert response.status_code == 200, response.text


def test_the_path_is_ignored_for_routing(server: Server) -> None:
    body = orjson.dumps({"RegistrationToken": "garbage"})
    path = "/some/path?x=1&y=a%20b"
    headers = signed_headers(server, "AWSMPMeteringService.ResolveCustomer", body, path=path)
    assert_error(post(server, headers, body, path=path), "InvalidTokenException", 400)


def test_get_shows_what_the_server_is(server: Server) -> None:
    info = requests.get(server.url + "/", timeout=5)
    assert info.status_code == 200
    assert info.json()["service"] == "marketmeter"
    assert requests.get(server.url + "/nothing-here", timeout=5).status_code == 404


@pytest.mark.parametrize(
    "timestamp",
    [
        "1e999990",
        "9" * 60,
        "-1e999999",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:30:00-05:00",
        1e300,
    ],
)
def test_absurd_timestamps_are_refused_at_once(
    server: Server, fresh: Fresh, timestamp: object
) -> None:
    payload = {"ProductCode": AMI, "Timestamp": timestamp, "UsageDimension": "gb"}
    started = time.monotonic()
    response = call(server, "MeterUsage", payload, key=fresh.buyer_key())
    assert time.monotonic() - started < 2
    assert response.status_code == 400
    assert response.json()["__type"] in {"TimestampOutOfBoundsException", "SerializationException"}


def test_a_nul_character_is_a_validation_exception(server: Server, fresh: Fresh) -> None:
    payload = {
        "ProductCode": AMI,
        "Timestamp": int(recent().timestamp()),
        "UsageDimension": "gb",
        "ClientToken": "a\x00b",
    }
    before = server.record_count()
    message = assert_error(
        call(server, "MeterUsage", payload, key=fresh.buyer_key()), "ValidationException", 400
    )
    assert "NUL" in message
    assert server.record_count() == before


def test_a_huge_key_version_is_an_invalid_public_key_version(server: Server) -> None:
    for version in (2**31, 18446744073709551615, 1e300):
        response = call(
            server,
            "RegisterUsage",
            {"ProductCode": CONTAINER, "PublicKeyVersion": version},
            key="buyer",
        )
        assert response.status_code == 400, response.text
        assert response.json()["__type"] in {
            "InvalidPublicKeyVersionException",
            "SerializationException",
        }


def test_two_targets_are_refused(server: Server) -> None:
    body = b'{"RegistrationToken": "x"}'
    headers = signed_headers(server, "AWSMPMeteringService.ResolveCustomer", body)
    raw_headers = [(k, v) for k, v in headers.items()] + [
        ("X-Amz-Target", "AWSMPMeteringService.MeterUsage")
    ]
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in raw_headers)
        sock.sendall(
            f"POST / HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"UnknownOperationException" in reply


def test_a_date_header_at_the_end_of_time_is_refused_before_authentication(server: Server) -> None:
    body = b"{}"
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AWSMPMeteringService.ResolveCustomer",
        "Date": "Fri, 31 Dec 9999 23:59:59 -0100",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAX/99991231/us-east-1/aws-marketplace/aws4_request, SignedHeaders=date;host, Signature="
        + "0" * 64,
    }
    response = post(server, headers, body)
    assert response.status_code == 400
    assert response.json()["__type"] in {
        "IncompleteSignatureException",
        "InvalidSignatureException",
    }


def test_deeply_nested_json_is_a_serialization_exception(server: Server, fresh: Fresh) -> None:
    nested = b"[" * 3000 + b"]" * 3000
    body = b'{"ProductCode": "p", "Timestamp": 1, "UsageDimension": "d", "X": ' + nested + b"}"
    assert_error(
        call(server, "MeterUsage", body, key=fresh.buyer_key()), "SerializationException", 400
    )
