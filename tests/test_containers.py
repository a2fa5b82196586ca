"""The Dockerfile and compose.yaml: what they promise (a non-root user, `marketmeter serve`
as entry point, a health check on /readyz, PostgreSQL and two replicas), read from the
files; and, where a Docker engine runs, the image built and its health check passing."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_the_image_runs_serve_as_a_user_and_checks_readyz() -> None:
    steps = instructions()
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    words = dict(final)
    assert words["FROM"].startswith("python:3.") and "slim" in words["FROM"]
    assert words["USER"] not in ("root", "0")
    assert words["ENTRYPOINT"] == '["marketmeter"]' and words["CMD"] == '["serve"]'
    assert "/readyz" in words["HEALTHCHECK"]
    assert "MARKETMETER_HOST=0.0.0.0" in words["ENV"]


def test_compose_runs_postgresql_and_two_replicas() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    replicas = [s for name, s in services.items() if name.startswith("marketmeter")]
    assert len(replicas) == 2
    ports = set()
    for replica in replicas:
        assert replica["environment"]["MARKETMETER_DATABASE_URL"].startswith("postgresql://")
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
        ports.update(replica["ports"])
    assert len(ports) == 2


def _engine_runs() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(
    not _engine_runs(), reason="no Docker engine runs on this machine (only a client, or none)"
)
def test_the_image_builds_and_becomes_healthy() -> None:
    tag = f"marketmeter-test:{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=600)
    container = subprocess.run(
        ["docker", "run", "-d", tag, "serve", "--demo"], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            health = subprocess.run(
                ["docker", "inspect", "-f", "{{.State.Health.Status}}", container],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            if health == "healthy":
                return
            time.sleep(1)
        raise AssertionError(f"never healthy: {health}")
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
