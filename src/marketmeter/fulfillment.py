"""The buyer's browser on AWS: after subscribing, it POSTs the registration token to the
product's fulfillment URL as a form (`x-amzn-marketplace-token`, and
`x-amzn-marketplace-offer-type=free-trial` for a trial) and follows the seller's answer.
Here the answer is reported, not followed: its status and any redirect `Location`."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

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


def post_token(url: str, token: str, *, free_trial: bool = False) -> FulfillmentAnswer:
    form = {"x-amzn-marketplace-token": token}
    if free_trial:
        form["x-amzn-marketplace-offer-type"] = "free-trial"
    try:
        response = httpx.post(url, data=form, timeout=TIMEOUT, follow_redirects=False)
    except httpx.HTTPError as exc:
        return FulfillmentAnswer(None, None, f"{type(exc).__name__}: {exc}".rstrip(": "))
    return FulfillmentAnswer(response.status_code, response.headers.get("location"), None)
