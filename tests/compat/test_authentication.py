"""SigV4 and identity checks of a real server: each failure refused, nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import orjson
import pytest

from tests.compat.conftest import Fresh, recent
from tests.compat.raw import assert_error, post, signed_headers, signing_time
from tests.compat.server import NO_RETRIES, Server, expect_error
from tests.factories import AMI, SAAS

pytestmark = pytest.mark.compat

MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)


def batch_body(fresh: Fresh) -> bytes:
    """A batch that would store a record if it got through."""
    at = int(recent().timestamp())
    record = {
        "Timestamp": at,
        "CustomerAWSAccountId": fresh.customer()[0],
        "Dimension": "users",
        "Quantity": 1,
    }
    return orjson.dumps({"ProductCode": SAAS, "UsageRecords": [record]})


TARGET = "AWSMPMeteringService.BatchMeterUsage"


def refused(server: Server, headers: dict[str, str], body: bytes, code: str) -> str:
    before = server.record_count()
    message = assert_error(post(server, headers, body), code, 400)
    assert server.record_count() == before
    return message


def test_a_correctly_signed_raw_request_is_accepted(server: Server, fresh: Fresh) -> None:
    body = batch_body(fresh)
    response = post(server, signed_headers(server, TARGET, body), body)
    assert response.status_code == 200
    assert response.json()["Results"][0]["Status"] == "Success"


def test_no_authorization_is_missing_authentication_token(server: Server, fresh: Fresh) -> None:
    body = batch_body(fresh)
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET}
    assert (
        refused(server, headers, body, "MissingAuthenticationTokenException")
        == "Request is missing Authentication Token"
    )


def test_a_malformed_authorization_is_incomplete_signature(server: Server, fresh: Fresh) -> None:
    body = batch_body(fresh)
    headers = signed_headers(server, TARGET, body)
    headers["Authorization"] = "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date"
    message = refused(server, headers, body, "IncompleteSignatureException")
    assert "Authorization header requires 'Credential' parameter." in message
    assert "Authorization header requires 'Signature' parameter." in message


def test_an_unknown_access_key_is_unrecognized(server: Server, fresh: Fresh) -> None:
    client = boto3.client(
        "meteringmarketplace",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="AKIAUNKNOWN000000001",
        aws_secret_access_key="x" * 40,
        config=NO_RETRIES,
    )
    record = {
        "Timestamp": recent(),
        "CustomerAWSAccountId": fresh.customer()[0],
        "Dimension": "users",
    }
    response = expect_error(
        server,
        "UnrecognizedClientException",
        400,
        client.batch_meter_usage,
        ProductCode=SAAS,
        UsageRecords=[record],
    )
    assert response["Error"]["Message"] == "The security token included in the request is invalid."


def test_a_wrong_secret_is_an_invalid_signature(server: Server, fresh: Fresh) -> None:
    key_id = server.keys["seller"][0]
    client = boto3.client(
        "meteringmarketplace",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key="wrong-secret-000000000000000000000000000",
        config=NO_RETRIES,
    )
    record = {
        "Timestamp": recent(),
        "CustomerAWSAccountId": fresh.customer()[0],
        "Dimension": "users",
    }
    response = expect_error(
        server,
        "InvalidSignatureException",
        400,
        client.batch_meter_usage,
        ProductCode=SAAS,
        UsageRecords=[record],
    )
    assert response["Error"]["Message"] == MISMATCH


def test_a_body_changed_after_signing_is_an_invalid_signature(server: Server, fresh: Fresh) -> None:
    body = batch_body(fresh)
    headers = signed_headers(server, TARGET, body)
    tampered = body.replace(b'"Quantity":1', b'"Quantity":9')
    assert tampered != body
    assert refused(server, headers, tampered, "InvalidSignatureException") == MISMATCH


def test_a_changed_signed_header_is_an_invalid_signature(server: Server, fresh: Fresh) -> None:
    body = batch_body(fresh)
    headers = signed_headers(server, TARGET, body)
    headers["X-Amz-Target"] = "AWSMPMeteringService.MeterUsage"
    refused(server, headers, body, "InvalidSignatureException")


def test_a_date_16_minutes_old_is_expired(server: Server, fresh: Fresh) -> None:
    body = batch_body(fresh)
    with signing_time(datetime.now(UTC) - timedelta(minutes=16)):
        headers = signed_headers(server, TARGET, body)
    message = refused(server, headers, body, "InvalidSignatureException")
    assert message.startswith(f"Signature expired: {headers['X-Amz-Date']} is now earlier than ")
    assert message.endswith(" - 15 min.)")


def test_a_date_16_minutes_ahead_is_not_yet_current(server: Server, fresh: Fresh) -> None:
    body = batch_body(fresh)
    with signing_time(datetime.now(UTC) + timedelta(minutes=16)):
        headers = signed_headers(server, TARGET, body)
    message = refused(server, headers, body, "InvalidSignatureException")
    assert message.startswith(
        f"Signature not yet current: {headers['X-Amz-Date']} is still later than "
    )


def test_a_date_14_minutes_off_is_accepted(server: Server, fresh: Fresh) -> None:
    body = batch_body(fresh)
    with signing_time(datetime.now(UTC) - timedelta(minutes=14)):
        headers = signed_headers(server, TARGET, body)
    assert post(server, headers, body).status_code == 200


def test_a_signature_for_another_service_is_invalid(server: Server, fresh: Fresh) -> None:
    body = batch_body(fresh)
    headers = signed_headers(server, TARGET, body, service="dynamodb")
    message = refused(server, headers, body, "InvalidSignatureException")
    assert "Credential should be scoped to correct service: 'aws-marketplace'" in message


def test_temporary_credentials_with_their_session_token_are_accepted(server: Server) -> None:
    out = server.client("session").meter_usage(
        ProductCode=AMI, Timestamp=recent(), UsageDimension="gb", UsageQuantity=1
    )
    assert out["MeteringRecordId"]


def test_a_wrong_session_token_is_unrecognized(server: Server) -> None:
    key_id, secret, _ = server.keys["session"]
    client = boto3.client(
        "meteringmarketplace",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token="not-the-token",
        config=NO_RETRIES,
    )
    expect_error(
        server,
        "UnrecognizedClientException",
        400,
        client.meter_usage,
        ProductCode=AMI,
        Timestamp=recent(),
        UsageDimension="vcpu_hours",
        UsageQuantity=1,
    )


def test_expired_temporary_credentials_are_refused(server: Server) -> None:
    response = expect_error(
        server,
        "ExpiredTokenException",
        400,
        server.client("expired").meter_usage,
        ProductCode=AMI,
        Timestamp=recent(),
        UsageDimension="gb",
        UsageQuantity=1,
    )
    assert response["Error"]["Message"] == "The security token included in the request is expired"


def test_a_key_without_the_permission_is_access_denied(server: Server, fresh: Fresh) -> None:
    record = {
        "Timestamp": recent(),
        "CustomerAWSAccountId": fresh.customer()[0],
        "Dimension": "users",
    }
    response = expect_error(
        server,
        "AccessDeniedException",
        400,
        server.client("limited").batch_meter_usage,
        ProductCode=SAAS,
        UsageRecords=[record],
    )
    assert (
        "is not authorized to perform: aws-marketplace:BatchMeterUsage"
        in response["Error"]["Message"]
    )


def test_dry_run_without_the_permission_is_unauthorized(server: Server) -> None:
    expect_error(
        server,
        "UnauthorizedException",
        400,
        server.client("limited").meter_usage,
        ProductCode=AMI,
        Timestamp=recent(),
        UsageDimension="gb",
        UsageQuantity=1,
        DryRun=True,
    )


def test_permission_is_checked_before_the_request_is_read(server: Server) -> None:
    # A malformed decimal (a ValidationException), but the key may not call MeterUsage at all.
    expect_error(
        server,
        "AccessDeniedException",
        400,
        server.client("limited").meter_usage,
        ProductCode=AMI,
        Timestamp=recent(),
        UsageDimension="gb",
        UsageQuantityAsDecimal="1.2.3",
    )
