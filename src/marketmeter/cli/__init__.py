"""The `marketmeter` command: serve the endpoints, administer the catalog, play the
marketplace around them, and read back what was stored.

Every command takes `--database URL` (or MARKETMETER_DATABASE_URL). Mistakes are reported
as one clear line on stderr with exit code 1 (2 for unusable options), never a traceback.
One module per topic; this one assembles them.
"""

from __future__ import annotations

import click

from marketmeter import __version__
from marketmeter.cli.agent import agent
from marketmeter.cli.catalog import catalog, keys, token
from marketmeter.cli.controls import clock, faults
from marketmeter.cli.lifecycle import entitlement, subscribe, subscription, unsubscribe
from marketmeter.cli.notifications import deliveries, events, webhook
from marketmeter.cli.records import records
from marketmeter.cli.serve import serve
from marketmeter.cli.usage import usage


@click.group()
@click.version_option(__version__, prog_name="marketmeter")
def main() -> None:
    """marketmeter — the AWS Marketplace Metering Service, self-hosted."""


for command in (
    serve,
    catalog,
    token,
    subscribe,
    unsubscribe,
    subscription,
    entitlement,
    webhook,
    events,
    deliveries,
    clock,
    faults,
    records,
    usage,
    keys,
    agent,
):
    main.add_command(command)
