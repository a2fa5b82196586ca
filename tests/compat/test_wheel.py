"""The wheel carries everything the server needs: built from the checkout
(`python -m build`), installed in a new virtualenv outside it, `marketmeter serve --demo`
from there answers a MeterUsage of the demo (the demo catalog), serves the console (its
templates and static files) and is ready (its migrations)."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

from tests.compat.server import free_port

pytestmark = pytest.mark.compat

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_serves_the_demo_from_a_virtualenv_of_its_own(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("marketmeter-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # The dependencies come from this environment (a path, not its .pth files: not the
    # editable install of the checkout); marketmeter itself only from the wheel.
    packages = next((venv / "lib").glob("python3.*/site-packages"))
    (packages / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        timeout=300,
    )
    where = subprocess.run(
        [str(python), "-c", "import marketmeter; print(marketmeter.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert where.startswith(str(venv)), where

    port = free_port()
    work = tmp_path / "elsewhere"
    work.mkdir()
    log = (work / "server.log").open("wb")
    server = subprocess.Popen(
        [str(venv / "bin" / "marketmeter"), "serve", "--demo", "--port", str(port)],
        cwd=work,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=1) as reply:
                    assert reply.status == 200
                    break
            except OSError:
                assert server.poll() is None, (work / "server.log").read_text()
                assert time.monotonic() < deadline, (work / "server.log").read_text()
                time.sleep(0.2)
        client = boto3.client(
            "meteringmarketplace",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="AKIADEMOBUYER0000001",
            aws_secret_access_key="demo-buyer-secret-key-0000000000000000001",
        )
        out = client.meter_usage(
            ProductCode="demoami0000000000000000001",
            Timestamp=time.time(),
            UsageDimension="vcpu_hours",
            UsageQuantity=1,
        )
        assert out["MeteringRecordId"]
        with urllib.request.urlopen(url + "/console/static/console.css", timeout=5) as css:
            assert css.status == 200 and css.read()
        with urllib.request.urlopen(url + "/console/sign-in", timeout=5) as page:
            assert b"<form" in page.read()
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()
    assert (work / "marketmeter.db").is_file()  # the default database, where it ran
