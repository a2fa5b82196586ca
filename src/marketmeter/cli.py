"""The `marketmeter` command: serve the endpoint and administer the catalog and records.

Every command takes `--database URL` (or MARKETMETER_DATABASE_URL). Mistakes are reported
as one clear line on stderr with exit code 1, never as a traceback.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
import yaml

from marketmeter import __version__
from marketmeter.app import create_service
from marketmeter.config import Settings
from marketmeter.documents import read_document
from marketmeter.domain.catalog_file import parse_catalog
from marketmeter.domain.errors import MeteringError
from marketmeter.domain.export import EXPORT_FIELDS
from marketmeter.domain.ports import StoreConflict, StoreUnavailable
from marketmeter.domain.service import MeteringService
from marketmeter.server.runner import run as run_server
from marketmeter.store.factory import DEFAULT_DATABASE_URL, UnsupportedDatabase

F = TypeVar("F", bound=Callable[..., Any])


def database_option(f: F) -> F:
    return click.option(
        "--database",
        "database_url",
        envvar="MARKETMETER_DATABASE_URL",
        default=DEFAULT_DATABASE_URL,
        show_default=True,
        help="Database URL: sqlite:///file.db or postgresql://user@host:5432/db.",
    )(f)


@contextmanager
def opened(database_url: str, **settings: Any) -> Iterator[MeteringService]:
    try:
        service = create_service(Settings(database_url=database_url, **settings))
    except (UnsupportedDatabase, StoreUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield service
    except (MeteringError, StoreUnavailable, StoreConflict) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        service.store.close()


@click.group()
@click.version_option(__version__, prog_name="marketmeter")
def main() -> None:
    """marketmeter — the AWS Marketplace Metering Service, self-hosted."""


# -- serve -----------------------------------------------------------------------------


@main.command()
@database_option
@click.option("--host", default="127.0.0.1", show_default=True, envvar="MARKETMETER_HOST")
@click.option("--port", default=8080, show_default=True, type=int, envvar="MARKETMETER_PORT")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    envvar="MARKETMETER_WORKERS",
    help="Server processes sharing the database.",
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 512),
    envvar="MARKETMETER_THREADS",
    help="Worker threads per process for database work.",
)
@click.option(
    "--regions",
    default="",
    envvar="MARKETMETER_REGIONS",
    help="Comma-separated Regions where the API is enabled (default: every Region).",
)
@click.option(
    "--throttling/--no-throttling",
    default=False,
    envvar="MARKETMETER_THROTTLING",
    help="Enforce AWS's per-account request quotas (ThrottlingException).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    envvar="MARKETMETER_LOG_LEVEL",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.option(
    "--demo", is_flag=True, help="Load the demo catalog and print credentials and a boto3 snippet."
)
def serve(demo: bool, **options: Any) -> None:
    """Serve the AWS-compatible endpoint (POST /) over HTTP."""
    settings = Settings(**options)
    with opened(settings.database_url) as service:  # create and migrate the schema once
        if demo:
            from marketmeter.demo import BUYER_ACCOUNT, SAAS_PRODUCT, banner, demo_catalog

            service.apply_catalog(parse_catalog(demo_catalog()))
            token = service.issue_registration_token(SAAS_PRODUCT, BUYER_ACCOUNT)
            endpoint = f"http://{settings.host}:{settings.port}"
            click.echo(banner(endpoint, token.token, settings.database_url))
    click.echo(
        f"marketmeter {__version__}: serving http://{settings.host}:{settings.port} "
        f"({settings.workers} worker{'s' if settings.workers > 1 else ''}, "
        f"database {settings.database_url})",
        err=True,
    )
    run_server(settings)


# -- catalog ---------------------------------------------------------------------------


@main.group()
def catalog() -> None:
    """Accounts, access keys, products and subscriptions."""


@catalog.command("apply")
@database_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def catalog_apply(database_url: str, file: Path) -> None:
    """Create or update everything FILE (YAML or JSON) describes. Idempotent."""
    try:
        document = read_document(file)
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{file}: not valid YAML or JSON: {exc}") from None
    with opened(database_url) as service:
        try:
            parsed = parse_catalog(document)
        except MeteringError as exc:
            raise click.ClickException(f"{file}: {exc}") from None
        summary = service.apply_catalog(parsed)
    click.echo(
        f"applied {file}: {summary.accounts} accounts, {summary.access_keys} access keys, "
        f"{summary.products} products, {summary.subscriptions} subscriptions"
    )


# -- token -----------------------------------------------------------------------------


@main.group()
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


# -- subscription ----------------------------------------------------------------------


@main.group()
def subscription() -> None:
    """Buyer subscriptions."""


@subscription.command("cancel")
@database_option
@click.option("--product", "product_code", required=True)
@click.option("--customer-account", required=True)
def subscription_cancel(database_url: str, product_code: str, customer_account: str) -> None:
    """End the buyer's subscription at once: later usage is CustomerNotSubscribed."""
    with opened(database_url) as service:
        ended = service.cancel_subscription(product_code, customer_account)
    for s in ended:
        click.echo(f"cancelled {s.license_arn} (agreement {s.agreement_id})")


# -- records ---------------------------------------------------------------------------


@main.group()
def records() -> None:
    """Stored metering records."""


@records.command("export")
@database_option
@click.option("--product", "product_code", default=None, help="Only this product's records.")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
def records_export(database_url: str, product_code: str | None, fmt: str) -> None:
    """Write every stored metering record to stdout, in the order stored."""
    out = sys.stdout
    with opened(database_url) as service:
        rows = service.export_records(product_code)
        if fmt == "jsonl":
            for row in rows:
                out.write(orjson.dumps(row).decode() + "\n")
        else:
            writer = csv.DictWriter(out, fieldnames=list(EXPORT_FIELDS), lineterminator="\n")
            writer.writeheader()
            for row in rows:
                if "UsageAllocations" in row:
                    row["UsageAllocations"] = orjson.dumps(row["UsageAllocations"]).decode()
                writer.writerow(row)


# -- keys ------------------------------------------------------------------------------


@main.group()
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
