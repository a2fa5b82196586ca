"""What `make run` prints and what the README shows work as printed, against a real demo
server."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compat.server import free_port, marketmeter

pytestmark = pytest.mark.compat

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A `serve --demo` process: (endpoint, database URL, what it printed)."""
    directory = tmp_path_factory.mktemp("demo")
    port = free_port()
    database = f"sqlite:///{directory / 'demo.db'}"
    out_path = directory / "out.txt"
    with out_path.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "marketmeter",
                "serve",
                "--demo",
                "--port",
                str(port),
                "--database",
                database,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(endpoint + "/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield endpoint, database, out_path.read_text()
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_printed_snippet_works_when_pasted(demo: tuple[str, str, str]) -> None:
    endpoint, _, printed = demo
    assert "AKIADEMOSELLER000001" in printed
    snippet = printed[
        printed.index("import boto3") : printed.index("UsageQuantity=4))")
        + len("UsageQuantity=4))")
    ]
    assert endpoint in snippet
    result = subprocess.run(
        [sys.executable, "-c", snippet], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "'Status': 'Success'" in result.stdout
    assert "'MeteringRecordId'" in result.stdout
    assert "'CustomerAWSAccountId': '444455556666'" in result.stdout


def test_the_readme_examples_run(demo: tuple[str, str, str]) -> None:
    endpoint, database, _ = demo
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 5
    token = marketmeter(
        "token",
        "issue",
        "--database",
        database,
        "--product",
        "demosaas000000000000000001",
        "--customer-account",
        "444455556666",
    ).stdout.splitlines()[-1]
    namespace: dict[str, Any] = {"token": token}
    for block in blocks:
        exec(block.replace("http://127.0.0.1:8080", endpoint), namespace)
    assert [r["Status"] for r in namespace["out"]["Results"]] == ["Success", "Success"]
    assert namespace["customer"]["CustomerIdentifier"] == "demoCust001"
