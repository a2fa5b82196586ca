"""The buyer's browser on AWS: after subscribing, it POSTs the registration token to the
product's fulfillment URL as a form (`x-amzn-marketplace-token`, and
`x-amzn-marketplace-offer-type=free-trial` for a trial) and follows the seller's answer.
Here the answer is reported, not followed: its status and any redirect `Location`.

`subscribe_buyer` is the whole step — subscribe, then post — for the command line, the
admin API, the console and the testing handle alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from marketmeter.domain.lifecycle import Subscribed
    from marketmeter.domain.service import MeteringService

TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class FulfillmentAnswer:
    status: int | None
    location: str | None
    error: str | None

    def describe(self, url: str) -> str:
        if self.status is None:
            return f"fulfillment URL {url} did not answer: {self.error}"
        where = f", Location: {self.location}" if self.location else ""
        return f"fulfillment URL {url} answered {self.status}{where}"


@dataclass(frozen=True, slots=True)
class SubscribedBuyer:
    done: Subscribed
    fulfillment_url: str | None
    """The product's fulfillment URL, when the token was posted to it."""
    answer: FulfillmentAnswer | None
    """What it answered (None: not posted — no URL, or not asked to)."""


def post_token(url: str, token: str, *, free_trial: bool = False) -> FulfillmentAnswer:
    import httpx  # only when posting: the server's start-up does not need it

    form = {"x-amzn-marketplace-token": token}
    if free_trial:
        form["x-amzn-marketplace-offer-type"] = "free-trial"
    try:
        response = httpx.post(url, data=form, timeout=TIMEOUT, follow_redirects=False)
    except httpx.HTTPError as exc:
        return FulfillmentAnswer(None, None, f"{type(exc).__name__}: {exc}".rstrip(": "))
    return FulfillmentAnswer(response.status_code, response.headers.get("location"), None)


def subscribe_buyer(
    service: MeteringService,
    product_code: str,
    customer_aws_account_id: str,
    *,
    free_trial: bool = False,
    offer_id: str | None = None,
    post: bool = True,
) -> SubscribedBuyer:
    """Subscribe the buyer (`Lifecycle.subscribe`), then — with `post`, when the product
    has a fulfillment URL — POST the registration token there as the buyer's browser does."""
    done = service.marketplace.subscribe(
        product_code, customer_aws_account_id, free_trial=free_trial, offer_id=offer_id
    )
    product = service.store.get_product(product_code)
    url = product.fulfillment_url if product is not None else None
    if not post or not url:
        return SubscribedBuyer(done, None, None)
    return SubscribedBuyer(done, url, post_token(url, done.token.token, free_trial=free_trial))
