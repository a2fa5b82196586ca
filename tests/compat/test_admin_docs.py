"""docs/admin-api.md's curl examples run, in order, against a real server: each exits 0
(`--fail-with-body`: no 4xx or 5xx) and prints JSON; the one without a token prints 401."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.conftest import recent, start_server
from tests.compat.server import Server
from tests.factories import BUYER, SAAS

pytestmark = pytest.mark.compat

PAGE = Path(__file__).resolve().parents[2] / "docs" / "admin-api.md"
TOKEN = "docs-example-token-000001"


def examples() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", PAGE.read_text(), re.DOTALL)


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("admin-docs")
    srv = start_server(f"sqlite:///{directory / 'docs.db'}", directory, "--admin-token", TOKEN)
    yield srv
    srv.stop()


@pytest.mark.skipif(
    shutil.which("curl") is None,
    reason="curl is not installed (scripts/install-system-packages installs it)",
)
def test_the_curl_examples_run(docs_server: Server) -> None:
    docs_server.client().batch_meter_usage(
        ProductCode=SAAS,
        UsageRecords=[
            {
                "Timestamp": recent(),
                "CustomerAWSAccountId": BUYER,
                "Dimension": "users",
                "Quantity": 2,
            }
        ],
    )
    found = examples()
    assert len(found) == 6
    env = {**os.environ, "MM": docs_server.url, "TOKEN": TOKEN}
    outputs = []
    for script in found:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, script + done.stdout + done.stderr
        outputs.append(done.stdout)
    *answers, unauthorized = outputs
    for output in answers:
        for line in output.splitlines():
            json.loads(line)
    product, subscribed, page, lines, report = answers
    assert json.loads(product)["product_code"] == SAAS
    assert json.loads(subscribed)["subscription"]["customer_aws_account_id"] == "123412341234"
    assert [r["customer_aws_account_id"] for r in json.loads(page)["records"]] == [BUYER]
    assert [json.loads(line)["dimension"] for line in lines.splitlines()] == ["users"]
    assert any(r["customer_aws_account_id"] == BUYER for r in json.loads(report)["rows"])
    assert unauthorized == "401\n"
