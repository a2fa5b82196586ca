"""A buyer's life: `subscribe`, `unsubscribe`, `subscription cancel`, and a contract's
`entitlement set` / `entitlement remove`."""

from __future__ import annotations

from datetime import datetime

import click

from marketmeter.cli.common import database_option, opened, parse_time
from marketmeter.domain.models import ENTITLEMENT_TYPES
from marketmeter.fulfillment import subscribe_buyer

product_option = click.option("--product", "product_code", required=True, help="Product code.")
account_option = click.option(
    "--customer-account", required=True, help="The buyer's AWS account ID (12 digits)."
)


@click.command()
@database_option
@product_option
@account_option
@click.option("--free-trial", is_flag=True, help="A free trial (the offer type posted says so).")
@click.option("--offer", "offer_id", default=None, help="The offer's id (offer-identifier).")
def subscribe(
    database_url: str,
    product_code: str,
    customer_account: str,
    free_trial: bool,
    offer_id: str | None,
) -> None:
    """Subscribe the buyer (or reopen an ended subscription), mint a registration token and
    POST it to the product's fulfillment URL; the token is the last line of output."""
    with opened(database_url) as service:
        bought = subscribe_buyer(
            service, product_code, customer_account, free_trial=free_trial, offer_id=offer_id
        )
    done, s = bought.done, bought.done.subscription
    if done.changed:
        click.echo(
            f"subscribed {customer_account} to {product_code}: customer {s.customer_identifier}, "
            f"license {s.license_arn}, agreement {s.agreement_id}",
            err=True,
        )
    else:
        click.echo(f"{customer_account} is subscribed to {product_code} already", err=True)
    if bought.fulfillment_url is not None and bought.answer is not None:
        click.echo(bought.answer.describe(bought.fulfillment_url), err=True)
    click.echo(done.token.token)


@click.command()
@database_option
@product_option
@account_option
def unsubscribe(database_url: str, product_code: str, customer_account: str) -> None:
    """The buyer unsubscribes: usage is still accepted for one hour of the service clock,
    then the subscription ends (unsubscribe-success)."""
    with opened(database_url) as service:
        s = service.marketplace.unsubscribe(product_code, customer_account)
    assert s.ends_at is not None
    click.echo(
        f"unsubscribe pending for {s.license_arn}: usage accepted until "
        f"{s.ends_at:%Y-%m-%dT%H:%M:%SZ}"
    )


@click.group()
def subscription() -> None:
    """Buyer subscriptions."""


@subscription.command("cancel")
@database_option
@product_option
@account_option
def subscription_cancel(database_url: str, product_code: str, customer_account: str) -> None:
    """End the buyer's subscription at once: later usage is CustomerNotSubscribed."""
    with opened(database_url) as service:
        ended = service.cancel_subscription(product_code, customer_account)
    for s in ended:
        click.echo(f"cancelled {s.license_arn} (agreement {s.agreement_id})")


@click.group()
def entitlement() -> None:
    """A contract subscription's entitlements (what GetEntitlements returns)."""


@entitlement.command("set")
@database_option
@product_option
@account_option
@click.option("--dimension", required=True)
@click.option("--value", required=True, help="An integer, a decimal, true/false or text.")
@click.option(
    "--type", "type_", type=click.Choice(ENTITLEMENT_TYPES), default=None, help="Force a type."
)
@click.option("--expires-at", default=None, help="ISO 8601 time; none: no expiry.")
def entitlement_set(
    *,
    database_url: str,
    product_code: str,
    customer_account: str,
    dimension: str,
    value: str,
    type_: str | None,
    expires_at: str | None,
) -> None:
    """Set the value of one dimension (entitlement-updated goes out)."""
    expiry: datetime | None = None if expires_at is None else parse_time(expires_at)
    with opened(database_url) as service:
        e = service.marketplace.set_entitlement(
            product_code, customer_account, dimension, value, type_=type_, expires_at=expiry
        )
    until = f" until {e.expires_at:%Y-%m-%dT%H:%M:%SZ}" if e.expires_at else ""
    click.echo(f"{e.dimension} = {e.value} ({e.type}){until}")


@entitlement.command("remove")
@database_option
@product_option
@account_option
@click.option("--dimension", required=True)
def entitlement_remove(
    database_url: str, product_code: str, customer_account: str, dimension: str
) -> None:
    """Remove one dimension's entitlement (entitlement-updated goes out)."""
    with opened(database_url) as service:
        service.marketplace.remove_entitlement(product_code, customer_account, dimension)
    click.echo(f"removed {dimension}")
