"""examples/saas-seller — a seller's project with its own tests (the mock, the server
fixture, moto) — passes, run as its author runs it: pytest in its directory, with the
plugin found through the installed package's entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "saas-seller"


@pytest.mark.timeout(300)
def test_the_seller_project_passes_its_tests(tmp_path: Path) -> None:
    copy = tmp_path / "saas-seller"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("__pycache__", ".*cache"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        env.pop(name, None)  # as on a seller's laptop with no AWS set up
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout
