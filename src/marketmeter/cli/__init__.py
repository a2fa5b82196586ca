"""The `marketmeter` command: serve the endpoints, administer the catalog, play the
marketplace around them, and read back what was stored.

Every command takes `--database URL` (or MARKETMETER_DATABASE_URL). Mistakes are reported
as one clear line on stderr with exit code 1 (2 for unusable options), never a traceback.
One module per topic; this one assembles them.
"""

from __future__ import annotations

import importlib

import click

from marketmeter import __version__

COMMANDS = {
    "serve": "serve:serve",
    "catalog": "catalog:catalog",
    "token": "catalog:token",
    "subscribe": "lifecycle:subscribe",
    "unsubscribe": "lifecycle:unsubscribe",
    "subscription": "lifecycle:subscription",
    "entitlement": "lifecycle:entitlement",
    "webhook": "notifications:webhook",
    "events": "notifications:events",
    "deliveries": "notifications:deliveries",
    "clock": "controls:clock",
    "faults": "controls:faults",
    "records": "records:records",
    "usage": "usage:usage",
    "keys": "catalog:keys",
    "agent": "agent:agent",
    "backup": "backup:backup",
    "restore": "backup:restore",
    "secrets": "secrets:secrets",
    "doctor": "doctor:doctor",
}
"""Each command and its `module:name` under marketmeter.cli: a command's module is imported
when the command runs (or help lists it), so `serve` starts without loading the agent's
AWS client, the catalog reader and the rest."""


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, name = where.split(":")
        command = getattr(importlib.import_module(f"marketmeter.cli.{module}"), name)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="marketmeter")
def main() -> None:
    """marketmeter — the AWS Marketplace Metering Service, self-hosted."""
