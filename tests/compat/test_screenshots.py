"""`make screenshots` works from a fresh demo database, and docs/console.md shows every
picture it takes (and no other)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_the_screenshot_script_photographs_every_page_the_docs_show(tmp_path: Path) -> None:
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (scripts/install-system-packages does it)")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "screenshots.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    taken = {p.name for p in tmp_path.glob("*.png")}
    shown = set(
        re.findall(r"\]\(console/([^)]+\.png)\)", (ROOT / "docs" / "console.md").read_text())
    )
    assert taken == shown
    assert len(taken) >= 12
    for name in taken:
        width, height = png_size(tmp_path / name)
        assert width == (780 if name == "overview-phone.png" else 1280), name
        assert height >= 600, name
