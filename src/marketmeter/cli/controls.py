"""Test controls: `clock` and `faults`. Only a server started with `--test-controls`
obeys them; when none uses the database, the commands say so (and still succeed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from marketmeter.cli.common import database_option, opened, parse_time
from marketmeter.domain.controls import TestControls, checked_faults, parse_duration

HEARTBEAT_FRESH = timedelta(seconds=10)


@click.group()
def clock() -> None:
    """The service clock of servers started with --test-controls."""


@clock.command("set")
@database_option
@click.argument("at")
def clock_set(database_url: str, at: str) -> None:
    """Make the service clock read AT (ISO 8601) now; it runs on from there."""
    when = parse_time(at)
    with opened(database_url) as service:
        _report(service.marketplace.set_clock(when, datetime.now(UTC)))


@clock.command("advance")
@database_option
@click.argument("duration")
def clock_advance(database_url: str, duration: str) -> None:
    """Move the service clock on by DURATION (2h, 90m, 1d, 45s, 1h30m; -1h goes back)."""
    with opened(database_url) as service:
        _report(service.marketplace.advance_clock(parse_duration(duration)))


@clock.command("reset")
@database_option
def clock_reset(database_url: str) -> None:
    """The service clock reads the real time again."""
    with opened(database_url) as service:
        _report(service.marketplace.reset_clock())


@clock.command("show")
@database_option
def clock_show(database_url: str) -> None:
    """The service clock, and its offset from the real time."""
    with opened(database_url) as service:
        _report(service.marketplace.test_controls())


@click.group()
def faults() -> None:
    """Make calls fail as AWS can (servers started with --test-controls)."""


@faults.command("set")
@database_option
@click.option("--operation", default=None, help="Only this operation (default: every one).")
@click.option("--throttle", is_flag=True, help="ThrottlingException for every call.")
@click.option("--internal-errors", type=click.IntRange(0), default=0, help="The next N calls.")
@click.option("--throttle-rate", type=float, default=0.0, help="A random share throttled.")
@click.option(
    "--unprocessed-rate", type=float, default=0.0, help="A share of batch records unprocessed."
)
@click.option("--latency", "latency_ms", type=click.IntRange(0), default=0, help="Added ms.")
def faults_set(
    *,
    database_url: str,
    operation: str | None,
    throttle: bool,
    internal_errors: int,
    throttle_rate: float,
    unprocessed_rate: float,
    latency_ms: int,
) -> None:
    """Calls fail so until `faults clear`."""
    with opened(database_url) as service:
        checked = checked_faults(operation, throttle, throttle_rate, unprocessed_rate, latency_ms)
        _report(service.marketplace.set_faults(checked, internal_errors))


@faults.command("clear")
@database_option
def faults_clear(database_url: str) -> None:
    """No more faults."""
    with opened(database_url) as service:
        _report(service.marketplace.clear_faults())


def _report(controls: TestControls) -> None:
    now = datetime.now(UTC)
    offset = controls.clock_offset
    click.echo(f"service clock: {now + offset:%Y-%m-%dT%H:%M:%SZ} (offset {offset})")
    if controls.faults is not None or controls.internal_errors:
        click.echo(
            f"faults: {controls.faults}, internal errors still to come: {controls.internal_errors}"
        )
    served = controls.served_at
    if served is None or now - served > HEARTBEAT_FRESH:
        click.echo(
            "warning: no server started with --test-controls uses this database: "
            "nothing obeys these controls until one does",
            err=True,
        )
