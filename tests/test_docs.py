"""The documentation keeps up with the code: every error code, command and setting."""

from __future__ import annotations

import re
from pathlib import Path

import click

from marketmeter.cli import main
from marketmeter.config import Settings
from marketmeter.protocol import sigv4
from marketmeter.protocol.errors import ERROR_TYPES

DOCS = Path(__file__).resolve().parent.parent / "docs"
README = DOCS.parent / "README.md"

WIRE_ERRORS = {
    "SerializationException",
    "UnknownOperationException",
    "RequestEntityTooLargeException",
    "ExpiredTokenException",
    *(cls.aws_type for cls in sigv4.SigV4Error.__subclasses__()),
}
ADMIN_ONLY = {"ResourceNotFoundException"}


def test_every_error_code_is_documented_with_its_status() -> None:
    table = (DOCS / "errors.md").read_text()
    documented = dict(re.findall(r"^\| `(\w+)` \| (\d{3}) \|", table, re.M))
    for code, status in ERROR_TYPES.values():
        if code in ADMIN_ONLY:
            continue
        assert documented.get(code) == str(status), code
    for code in WIRE_ERRORS:
        assert code in documented, code


def _commands(group: click.Group, prefix: str = "marketmeter") -> list[tuple[str, click.Command]]:
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found.extend(_commands(command, path))
        else:
            found.append((path, command))
    return found


def test_every_command_and_option_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    for path, command in _commands(main):
        assert f"## {path}" in text, path
        for param in command.params:
            if isinstance(param, click.Option) and param.name not in ("help",):
                assert any(opt in text for opt in param.opts), f"{path} {param.opts}"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    for variable in Settings().to_environment():
        assert f"`{variable}`" in text, variable


def test_the_readme_shows_the_two_commands_and_links_every_page() -> None:
    readme = README.read_text()
    assert "make run" in readme
    assert "make test" in readme
    for page in DOCS.glob("*.md"):
        assert f"docs/{page.name}" in readme, page.name
