"""`marketmeter doctor`: the configuration, the database and the clock checked, and what to
fix said (`doctor.py`)."""

from __future__ import annotations

import dataclasses

import click

from marketmeter.cli.common import database_option
from marketmeter.config import Settings

MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


@click.command()
@database_option
def doctor(database_url: str) -> None:
    """Check the configuration (MARKETMETER_* variables), the database and the clock; say
    what to fix. Changes nothing. Exit status 1 if anything failed."""
    from marketmeter.doctor import examine

    settings = dataclasses.replace(Settings.from_environment(), database_url=database_url)
    failed = False
    for finding in examine(settings):
        failed |= finding.level == "fail"
        click.echo(f"{MARKS[finding.level]}  {finding.topic}: {finding.text}")
    if failed:
        raise SystemExit(1)
