"""The server's log lines (`--log-format json|text`): one line per failed request with its
request id, operation, caller account and `__type` — and never a secret, a signature or a
registration token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.compat.conftest import Fresh, new_database, start_server
from tests.compat.server import NO_RETRIES, Server, issue_token
from tests.factories import OTHER_SELLER, SAAS, SELLER

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module", params=["json", "text"])
def logged(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"logs-{request.param}-{store_kind}")
    url = new_database(request, store_kind, directory)
    server = start_server(url, directory, "--log-format", request.param, "--log-level", "info")
    yield server
    server.stop()


def failing_requests(server: Server, fresh: Fresh) -> dict[str, Any]:
    """Three failed requests; what each sent that must never be logged."""
    signatures: list[str] = []
    client = server.client()
    client.meta.events.register(
        "before-send.*",
        lambda request, **_: signatures.append(request.headers["Authorization"].decode()),
    )
    answers = {}
    with pytest.raises(ClientError) as product:
        client.batch_meter_usage(ProductCode="nosuchproduct000000000001", UsageRecords=[])
    answers["InvalidProductCodeException"] = product.value.response
    token = issue_token(server, fresh.customer()[0])
    with pytest.raises(ClientError) as other:
        server.client("other_seller").resolve_customer(RegistrationToken=token)
    answers["InvalidTokenException"] = other.value.response
    wrong = boto3.client(
        "meteringmarketplace",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=server.keys["seller"][0],
        aws_secret_access_key="not-the-secret-0000000000000000000000000",
        config=NO_RETRIES,
    )
    with pytest.raises(ClientError) as unsigned:
        wrong.meter_usage(
            ProductCode=SAAS, Timestamp=time.time(), UsageDimension="users", UsageQuantity=1
        )
    answers[unsigned.value.response["Error"]["Code"]] = unsigned.value.response
    secrets = [server.keys["seller"][1], server.keys["other_seller"][1], token]
    secrets += [s.split("Signature=")[1] for s in signatures]
    return {"answers": answers, "secrets": secrets}


def wait_for_lines(server: Server, count: int, marker: str) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in server.log_path.read_text().splitlines() if marker in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_each_failed_request_is_one_line_without_secrets(logged: Server, fresh: Fresh) -> None:
    sent = failing_requests(logged, fresh)
    text = logged.log_path.read_text()
    if "--log-format" in logged.extra_args and "json" in logged.extra_args:
        lines = [json.loads(line) for line in wait_for_lines(logged, 3, '"request_id"')]
        assert all(
            {"time", "level", "logger", "message", "request_id", "operation", "status"} <= set(line)
            for line in lines
        )
        by_id = {line["request_id"]: line for line in lines}
        for code, response in sent["answers"].items():
            line = by_id[response["ResponseMetadata"]["RequestId"]]
            assert line["error_type"] == code
            assert line["status"] == response["ResponseMetadata"]["HTTPStatusCode"]
            assert line["level"] == "info"
            assert line["logger"] == "marketmeter.endpoint"
        product = by_id[
            sent["answers"]["InvalidProductCodeException"]["ResponseMetadata"]["RequestId"]
        ]
        assert (product["operation"], product["account"]) == ("BatchMeterUsage", SELLER)
        token = by_id[sent["answers"]["InvalidTokenException"]["ResponseMetadata"]["RequestId"]]
        assert token["operation"] == "ResolveCustomer"
        assert token["account"] == OTHER_SELLER
        unsigned = next(
            line
            for code, line in (
                (c, by_id[r["ResponseMetadata"]["RequestId"]]) for c, r in sent["answers"].items()
            )
            if code not in ("InvalidProductCodeException", "InvalidTokenException")
        )
        assert "account" not in unsigned  # the signature did not check out: nobody's
    else:
        lines = wait_for_lines(logged, 3, " failed: ")
        for code, response in sent["answers"].items():
            request_id = response["ResponseMetadata"]["RequestId"]
            (line,) = [line for line in lines if request_id in line]
            assert (
                f" failed: {code} (HTTP {response['ResponseMetadata']['HTTPStatusCode']})" in line
            )
    text = logged.log_path.read_text()
    for secret in sent["secrets"]:
        assert secret not in text
