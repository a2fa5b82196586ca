"""`marketmeter serve`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from marketmeter import __version__
from marketmeter.cli.common import database_option, opened
from marketmeter.config import Settings
from marketmeter.domain.admin_token import check_configured_token, ensure_admin_token
from marketmeter.domain.catalog_file import parse_catalog
from marketmeter.server.runner import run as run_server


def check_tls(settings: Settings) -> None:
    """Both files or neither, and a pair that loads: said now, not by each worker."""
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together: give both, or neither")
    if not settings.tls_cert:
        return
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            settings.tls_cert, settings.tls_key
        )
    except (OSError, ssl.SSLError) as exc:
        raise click.UsageError(
            f"cannot use --tls-cert {settings.tls_cert} with --tls-key {settings.tls_key}: {exc}"
        ) from exc


def check_secret_key() -> None:
    """A configured key that is not one is an error now; none at all, a warning."""
    from marketmeter.store import secrets

    try:
        box = secrets.configured()
    except secrets.SecretKeyError as exc:
        raise click.UsageError(str(exc)) from None
    if box.current is None:
        click.echo(
            f"warning: no {secrets.KEY_VARIABLE}: secret keys are stored unencrypted "
            "(`marketmeter secrets generate` makes a key; docs/operations.md)",
            err=True,
        )


def without_password(url: str) -> str:
    """`url` fit for a log: a password in it replaced by ***."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@click.command()
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
    "--log-format",
    default="text",
    show_default=True,
    envvar="MARKETMETER_LOG_FORMAT",
    type=click.Choice(["text", "json"]),
    help="Log lines as text, or as one JSON object each.",
)
@click.option(
    "--test-controls",
    is_flag=True,
    envvar="MARKETMETER_TEST_CONTROLS",
    help="Obey `marketmeter clock` and `marketmeter faults` (for tests; never in production).",
)
@click.option(
    "--public-url",
    default="",
    envvar="MARKETMETER_PUBLIC_URL",
    help="This server's address as seen by the receivers of its SNS messages "
    "(SubscribeURL, SigningCertURL). Default: http://HOST:PORT.",
)
@click.option(
    "--deliveries/--no-deliveries",
    default=True,
    envvar="MARKETMETER_DELIVERIES",
    help="Deliver notifications from these processes (on by default).",
)
@click.option(
    "--admin-token",
    default="",
    envvar="MARKETMETER_ADMIN_TOKEN",
    show_default=False,
    help="The admin API's bearer token (16 characters or more). Default: one generated on "
    "the first start, printed once and kept hashed in the database.",
)
@click.option(
    "--metrics-token",
    default="",
    envvar="MARKETMETER_METRICS_TOKEN",
    show_default=False,
    help="Answer GET /metrics only with 'Authorization: Bearer <token>'. Default: open.",
)
@click.option(
    "--request-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    envvar="MARKETMETER_REQUEST_TIMEOUT",
    help="Seconds a client has to send a request's headers, and again its body; a slower "
    "one is disconnected.",
)
@click.option(
    "--max-connections",
    default=10_000,
    show_default=True,
    type=click.IntRange(min=1),
    envvar="MARKETMETER_MAX_CONNECTIONS",
    help="Connections (and requests in progress) each process serves at once; past it, HTTP 503.",
)
@click.option(
    "--tls-cert",
    default="",
    envvar="MARKETMETER_TLS_CERT",
    help="Serve HTTPS with this PEM certificate (its chain after it); needs --tls-key.",
)
@click.option(
    "--tls-key",
    default="",
    envvar="MARKETMETER_TLS_KEY",
    help="The PEM private key of --tls-cert.",
)
@click.option(
    "--demo", is_flag=True, help="Load the demo catalog and print credentials and a boto3 snippet."
)
def serve(demo: bool, **options: Any) -> None:
    """Serve the AWS-compatible endpoint (POST /) over HTTP (or HTTPS)."""
    settings = Settings(**options)
    check_tls(settings)
    check_secret_key()
    with opened(settings.database_url) as service:  # create and migrate the schema once
        if settings.admin_token:
            check_configured_token(settings.admin_token)
        else:
            generated = ensure_admin_token(service.store, datetime.now(UTC))
            if generated is not None:
                click.echo(
                    f"admin API token (shown once; kept hashed — set MARKETMETER_ADMIN_TOKEN "
                    f"to choose your own): {generated}",
                    err=True,
                )
        if demo:
            from marketmeter.demo import BUYER_ACCOUNT, SAAS_PRODUCT, banner, demo_catalog

            service.apply_catalog(parse_catalog(demo_catalog()))
            token = service.issue_registration_token(SAAS_PRODUCT, BUYER_ACCOUNT)
            click.echo(banner(settings.address(), token.token, settings.database_url))
    click.echo(
        f"marketmeter {__version__}: serving {settings.address()} "
        f"({settings.workers} worker{'s' if settings.workers > 1 else ''}, "
        f"database {without_password(settings.database_url)})",
        err=True,
    )
    run_server(settings)
