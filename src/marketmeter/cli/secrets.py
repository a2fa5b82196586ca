"""`marketmeter secrets generate` and `secrets rotate`: the key the stored secrets are
encrypted under (`store/secrets.py`, docs/operations.md)."""

from __future__ import annotations

import click

from marketmeter.cli.common import database_option, opened
from marketmeter.store import secrets as stored_secrets


@click.group()
def secrets() -> None:
    """The key that stored secrets are encrypted under."""


@secrets.command("generate")
def secrets_generate() -> None:
    """Print a new key: 32 random bytes, URL-safe base64 (for MARKETMETER_SECRET_KEY)."""
    click.echo(stored_secrets.generate_key())


@secrets.command("rotate")
@database_option
def secrets_rotate(database_url: str) -> None:
    """Encrypt every stored secret under the first key of MARKETMETER_SECRET_KEY.

    To replace a key with no downtime: give the servers both keys, the new one first
    (MARKETMETER_SECRET_KEY=NEW,OLD), run this, then give them the new one only."""
    try:
        box = stored_secrets.configured()
    except stored_secrets.SecretKeyError as exc:
        raise click.ClickException(str(exc)) from None
    if box.current is None:
        raise click.ClickException(
            f"no key: set {stored_secrets.KEY_VARIABLE} (or {stored_secrets.KEY_FILE_VARIABLE}) "
            "to the key to encrypt under, first"
        )
    with opened(database_url) as service, service.store.transaction() as tx:
        done = tx.reseal_secrets()
    click.echo(f"{done} secret{'' if done == 1 else 's'} encrypted under key {box.current}")
