"""`marketmeter backup` and `marketmeter restore`: a consistent copy of a database taken
while servers serve it, and the database made that copy again (`store/backup.py`)."""

from __future__ import annotations

from pathlib import Path

import click

from marketmeter.cli.common import database_option, opened
from marketmeter.store.backup import BackupError
from marketmeter.store.backup import backup as make_backup
from marketmeter.store.backup import restore as restore_backup
from marketmeter.store.factory import UnsupportedDatabase


@click.command()
@database_option
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The backup file to write (replaced if it exists, once the new copy is whole).",
)
def backup(database_url: str, to: Path) -> None:
    """Copy the database, consistently, while servers go on serving it."""
    click.echo(f"backing up to {to} …", err=True)
    try:
        made = make_backup(database_url, to)
    except (BackupError, UnsupportedDatabase) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backed up to {made.path}: {made.bytes:,} bytes in {made.seconds:.1f} s")


@click.command()
@database_option
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file `marketmeter backup` wrote.",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Replace a database that holds data (stop its servers first).",
)
def restore(database_url: str, source: Path, replace: bool) -> None:
    """Make the database the backup FROM again (its servers stopped)."""
    click.echo(f"restoring {source} …", err=True)
    try:
        made = restore_backup(source, database_url, replace=replace)
    except (BackupError, UnsupportedDatabase) as exc:
        raise click.ClickException(str(exc)) from None
    with opened(database_url) as service:  # brought to this build's migrations
        records = service.store.count_records()
    click.echo(f"restored {made.path} in {made.seconds:.1f} s: {records:,} metering records")
