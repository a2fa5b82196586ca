"""The layers of docs/architecture.md hold: the domain imports no HTTP and no SQL, the admin
API no SQL (it calls the domain), and the seller's side (client, agent) imports nothing of
the server."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "marketmeter"


def imports(module: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def offending(layer: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    bad = {}
    for module in sorted((PACKAGE / layer).rglob("*.py")):
        hits = sorted(
            name
            for name in imports(module)
            if any(name == f or name.startswith(f + ".") for f in forbidden)
        )
        if hits:
            bad[str(module.relative_to(PACKAGE))] = hits
    return bad


SERVER_SIDE = tuple(
    f"marketmeter.{name}"
    for name in (
        "domain",
        "store",
        "protocol",
        "server",
        "delivery",
        "app",
        "services",
        "cli",
        "background",
        "fulfillment",
    )
)


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        (
            "domain",
            (
                "sqlite3",
                "psycopg",
                "psycopg_pool",
                "starlette",
                "uvicorn",
                "httpx",
                "http",
                "marketmeter.store",
                "marketmeter.protocol",
                "marketmeter.server",
                "marketmeter.delivery",
            ),
        ),
        (
            "admin",
            ("sqlite3", "psycopg", "psycopg_pool", "marketmeter.store", "marketmeter.protocol"),
        ),
        (
            "console",
            (
                "sqlite3",
                "psycopg",
                "psycopg_pool",
                "marketmeter.store",
                "marketmeter.protocol",
                "marketmeter.admin",
            ),
        ),
        ("client", (*SERVER_SIDE, "marketmeter.agent")),
        ("agent", SERVER_SIDE),
    ],
)
def test_a_layer_imports_nothing_it_must_not(layer: str, forbidden: tuple[str, ...]) -> None:
    assert (PACKAGE / layer).is_dir()
    assert offending(layer, forbidden) == {}


def test_the_check_sees_an_import() -> None:
    assert "marketmeter.client" in imports(PACKAGE / "agent" / "meter.py")
    assert offending("agent", ("marketmeter.client",))  # the agent does use the client
