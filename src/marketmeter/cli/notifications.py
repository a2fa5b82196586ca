"""Where notifications go and what became of them: `webhook` (SNS subscriptions),
`events` (EventBridge targets), `deliveries`."""

from __future__ import annotations

import click

from marketmeter.cli.common import database_option, opened
from marketmeter.config import Settings


@click.group()
def webhook() -> None:
    """SNS subscriptions of HTTP(S) endpoints to a product's topics."""


@webhook.command("add")
@database_option
@click.option("--product", "product_code", required=True)
@click.option("--url", required=True, help="The endpoint: it gets a SubscriptionConfirmation.")
@click.option("--topic", type=click.Choice(["subscription", "entitlement"]), default="subscription")
@click.option("--signature-version", type=click.Choice(["1", "2"]), default="1")
def webhook_add(
    database_url: str, product_code: str, url: str, topic: str, signature_version: str
) -> None:
    """Subscribe URL to the product's topic; it must confirm (GET its SubscribeURL)."""
    with opened(database_url) as service:
        w = service.marketplace.add_webhook(product_code, url, topic, signature_version)
    click.echo(f"{w.id} {w.topic_arn} {w.url}: pending confirmation", err=True)
    click.echo(w.id)


@webhook.command("list")
@database_option
@click.option("--product", "product_code", default=None)
def webhook_list(database_url: str, product_code: str | None) -> None:
    """Every SNS subscription: id, topic, URL, signature version, state."""
    with opened(database_url) as service:
        found = service.marketplace.webhooks(product_code)
    for w in found:
        state = "confirmed" if w.confirmed_at else "pending confirmation"
        click.echo(f"{w.id}  {w.topic_arn}  {w.url}  v{w.signature_version}  {state}")


@webhook.command("remove")
@database_option
@click.argument("webhook_id")
def webhook_remove(database_url: str, webhook_id: str) -> None:
    """Unsubscribe one (by the id `webhook add` printed)."""
    with opened(database_url) as service:
        service.marketplace.remove_webhook(webhook_id)
    click.echo(f"removed {webhook_id}")


@click.group()
def events() -> None:
    """EventBridge targets: endpoints that receive every event as JSON."""


@events.command("add")
@database_option
@click.option("--url", required=True)
@click.option("--product", "product_code", default=None, help="Only this product's events.")
@click.option("--header", "headers", multiple=True, help="'Name: value', sent with each event.")
def events_add(
    database_url: str, url: str, product_code: str | None, headers: tuple[str, ...]
) -> None:
    """Send events to URL, as an EventBridge API destination does."""
    with opened(database_url) as service:
        t = service.marketplace.add_event_target(url, product_code, list(headers))
    click.echo(f"{t.id} {t.url}: events of {t.product_code or 'every product'}", err=True)
    click.echo(t.id)


@events.command("list")
@database_option
def events_list(database_url: str) -> None:
    """Every event target."""
    with opened(database_url) as service:
        found = service.marketplace.event_targets()
    for t in found:
        click.echo(f"{t.id}  {t.url}  {t.product_code or '(every product)'}")


@events.command("remove")
@database_option
@click.argument("target_id")
def events_remove(database_url: str, target_id: str) -> None:
    """Stop sending events to one target."""
    with opened(database_url) as service:
        service.marketplace.remove_event_target(target_id)
    click.echo(f"removed {target_id}")


@click.group(invoke_without_command=True)
@database_option
@click.option("--product", "product_code", default=None)
@click.option("--failed", is_flag=True, help="Only failed ones (and those being retried).")
@click.pass_context
def deliveries(
    ctx: click.Context, database_url: str, product_code: str | None, failed: bool
) -> None:
    """Every delivery (newest first), with its attempts."""
    if ctx.invoked_subcommand is not None:
        return
    with opened(database_url) as service:
        reports = service.marketplace.deliveries(product_code, failed_only=failed)
    for report in reports:
        d = report.delivery
        last = f"HTTP {d.last_status}" if d.last_status else (d.last_error or "not tried yet")
        click.echo(f"{d.id}  {d.kind:<11} {d.name:<38} {d.status:<9} attempts {d.attempts}  {last}")
        for a in report.attempts:
            outcome = f"HTTP {a.status}" if a.status else a.error
            click.echo(f"    #{a.attempt} {a.at:%Y-%m-%dT%H:%M:%SZ}  {outcome}")


@deliveries.command("retry")
@database_option
@click.argument("delivery_id")
def deliveries_retry(database_url: str, delivery_id: str) -> None:
    """Send a failed delivery (or one waiting out its backoff) again, now — by the running
    server's delivery worker, or by `deliveries send`."""
    with opened(database_url) as service:
        d = service.marketplace.retry_delivery(delivery_id)
    click.echo(f"{d.id} ({d.name}) is due again now, after {d.attempts} attempts")


@deliveries.command("send")
@database_option
@click.option(
    "--public-url", default="", help="The server's address in SNS messages' URLs (SubscribeURL)."
)
def deliveries_send(database_url: str, public_url: str) -> None:
    """Deliver what is due, once (for scripts that run no server)."""
    from marketmeter.delivery.worker import Deliverer  # httpx: only when sending

    with opened(database_url) as service:
        settings = Settings(database_url=database_url, public_url=public_url)
        deliverer = Deliverer(service.store, service.clock, settings.public_address())
        try:
            sent = deliverer.deliver_due(wait=True)
        finally:
            deliverer.close()
    click.echo(f"{sent} deliveries attempted")
