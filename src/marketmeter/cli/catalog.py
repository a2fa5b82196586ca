"""The catalog and what hangs on it: `catalog apply`, `token issue`, `keys`."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import click

from marketmeter.catalog_source import CatalogFileError, load_catalog
from marketmeter.cli.common import database_option, opened


@click.group()
def catalog() -> None:
    """Accounts, access keys, products and subscriptions."""


@catalog.command("apply")
@database_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def catalog_apply(database_url: str, file: Path) -> None:
    """Create or update everything FILE (YAML or JSON) describes. Idempotent."""
    started = time.monotonic()  # reading the file included: what its user waits for
    try:
        parsed = load_catalog(file)
    except CatalogFileError as exc:
        raise click.ClickException(str(exc)) from None
    with opened(database_url) as service:
        summary = service.apply_catalog(parsed)
    click.echo(
        f"applied {file}: {summary.accounts} accounts, {summary.access_keys} access keys, "
        f"{summary.products} products, {summary.subscriptions} subscriptions "
        f"in {time.monotonic() - started:.1f} s"
    )


# -- token -----------------------------------------------------------------------------


@click.group()
def token() -> None:
    """Registration tokens (what AWS posts to a SaaS product's fulfillment URL)."""


@token.command("issue")
@database_option
@click.option("--product", "product_code", required=True, help="Product code.")
@click.option("--customer-account", required=True, help="The buyer's AWS account ID.")
@click.option(
    "--expires-in",
    type=click.IntRange(1),
    default=None,
    envvar="MARKETMETER_TOKEN_TTL_SECONDS",
    help="Lifetime in seconds (default: 4 hours).",
)
def token_issue(
    database_url: str, product_code: str, customer_account: str, expires_in: int | None
) -> None:
    """Issue a registration token; it is the last line of output."""
    with opened(database_url) as service:
        issued = service.issue_registration_token(
            product_code,
            customer_account,
            None if expires_in is None else timedelta(seconds=expires_in),
        )
    click.echo(issued.token)


@click.group()
def keys() -> None:
    """RegisterUsage signing keys of container products."""


@keys.command("public")
@database_option
@click.option("--product", "product_code", required=True)
@click.option("--version", "version", required=True, type=click.IntRange(1))
def keys_public(database_url: str, product_code: str, version: int) -> None:
    """Print the PEM public key that verifies RegisterUsage signatures of VERSION."""
    with opened(database_url) as service:
        key = service.public_key(product_code, version)
    click.echo(key.public_pem, nl=False)


@keys.command("rotate")
@database_option
@click.option("--product", "product_code", required=True)
def keys_rotate(database_url: str, product_code: str) -> None:
    """Add the next key version; prints the new version number."""
    with opened(database_url) as service:
        key = service.rotate_key(product_code)
    click.echo(f"{product_code}: added signing key version {key.version}", err=True)
    click.echo(str(key.version))
