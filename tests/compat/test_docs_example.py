"""The examples of the docs run, as a seller would run them: each page shows its example
file whole (docs/examples/), and pytest runs the examples in a process of its own, with
`marketmeter` on the PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.compat

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = DOCS / "examples"
PAGES = {
    "testing-your-integration.md": ["test_mock_example.py", "test_seller_integration.py"],
    "client.md": ["test_client_example.py"],
    "agent.md": ["test_agent_example.py", "conftest.py"],
}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_each_page_shows_its_examples_whole(page: str) -> None:
    text = (DOCS / page).read_text()
    for example in PAGES[page]:
        assert f"```python\n{(EXAMPLES / example).read_text()}```" in text, example


def test_the_examples_pass(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path, dirs_exist_ok=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 passed" in done.stdout
