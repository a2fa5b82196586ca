"""`marketmeter agent status` and `agent retry`: what a metering agent's outbox holds."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson

from marketmeter.agent.outbox import Outbox, OutboxError
from marketmeter.agent.rules import decimal_text

outbox_option = click.option(
    "--outbox",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The agent's outbox file (UsageMeter's `outbox`).",
)


@click.group()
def agent() -> None:
    """A metering agent's outbox (marketmeter.agent.UsageMeter)."""


def _open(path: Path) -> Outbox:
    try:
        return Outbox(path)
    except OutboxError as exc:
        raise click.ClickException(str(exc)) from None


@agent.command("status")
@outbox_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def agent_status(path: Path, fmt: str) -> None:
    """Pending, sent, failed and expired usage per hour and dimension; then each failure
    with its reason."""
    box = _open(path)
    try:
        rows, failures = box.status(), box.failures()
    finally:
        box.close()
    for row in (*rows, *failures):
        row["hour"] = datetime.fromtimestamp(row["hour"], UTC).strftime("%Y-%m-%dT%H:%MZ")
        row["quantity"] = decimal_text(row.pop("micros"))
    if fmt == "json":
        click.echo(orjson.dumps({"hours": rows, "failures": failures}).decode())
        return
    click.echo(f"{'hour':<18} {'dimension':<24} {'state':<8} {'records':>7} {'quantity':>14}")
    for r in rows:
        click.echo(
            f"{r['hour']:<18} {r['dimension']:<24} {r['state']:<8} {r['rows']:>7} "
            f"{r['quantity']:>14}"
        )
    for f in failures:
        click.echo(
            f"{f['state']}: {f['customer'] or '(resource)'} {f['dimension']} {f['hour']} "
            f"{f['quantity']}: {f['reason']}"
        )


@agent.command("retry")
@outbox_option
def agent_retry(path: Path) -> None:
    """Send failed records again (not those recorded too late for their hour)."""
    box = _open(path)
    try:
        count = box.requeue_failures(time.time())
    finally:
        box.close()
    click.echo(f"{count} failed records will be sent again")
