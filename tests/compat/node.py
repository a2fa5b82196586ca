"""Node.js and the npm packages of `js/` for the compatibility tests: the AWS SDK for
JavaScript v3, and AWS's SNS message validator. Installed on first use with `npm ci` from
`js/package-lock.json` into `js/node_modules` (git-ignored, kept between runs); without
`node` and `npm` the tests that need them are skipped (`make test` installs both)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

JS_DIR = Path(__file__).parent / "js"
NODE_MODULES = JS_DIR / "node_modules"
STAMP = NODE_MODULES / ".marketmeter-installed"  # the lockfile digest `npm ci` installed
INSTALL_LOCK = JS_DIR / ".cache" / "npm-install.lock"  # `.cache/` is git-ignored
MIN_NODE = 18


def lock_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((JS_DIR / name).read_bytes())
    return digest.hexdigest()


def installed(digest: str) -> bool:
    return STAMP.is_file() and STAMP.read_text() == digest


def npm_env() -> dict[str, str]:
    return {
        **os.environ,
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }


def install_sdk(npm: str) -> None:
    """`npm ci` once per change of the lockfile, one process at a time (xdist workers)."""
    digest = lock_digest()
    if installed(digest):
        return
    INSTALL_LOCK.parent.mkdir(exist_ok=True)
    with INSTALL_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if installed(digest):  # another worker installed it while this one waited
            return
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            env=npm_env(),
            timeout=540,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(
                f"npm ci in {JS_DIR} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        STAMP.write_text(digest)


@dataclass(frozen=True)
class Node:
    executable: str
    version: str


def node_with_packages() -> Node:
    """Node.js with the SDK installed."""
    executable, npm = shutil.which("node"), shutil.which("npm")
    if executable is None or npm is None:
        pytest.skip(
            "Node.js and npm are not installed (`apt-get install nodejs npm`): "
            "the AWS SDK for JavaScript compatibility tests need them"
        )
    version = subprocess.run(
        [executable, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    major = re.match(r"v(\d+)\.", version)
    if major is None or int(major.group(1)) < MIN_NODE:
        pytest.fail(f"Node.js {version} is too old for the pinned JS SDK: it needs >= {MIN_NODE}")
    install_sdk(npm)
    return Node(executable, version)
