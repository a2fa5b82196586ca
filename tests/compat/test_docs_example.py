"""The integration test in docs/testing-your-integration.md runs, as a seller would run it:
the page shows docs/examples/test_seller_integration.py whole, and pytest runs that file in
a process of its own, with `marketmeter` on the PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.compat

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLE = DOCS / "examples" / "test_seller_integration.py"


def test_the_page_shows_the_example_whole() -> None:
    page = (DOCS / "testing-your-integration.md").read_text()
    assert f"```python\n{EXAMPLE.read_text()}```" in page


def test_the_example_passes(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", EXAMPLE.name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
