"""The console's actions (form POSTs, each behind the session's CSRF token, checked by the
app before any of these run): the buyer's lifecycle, entitlements, a delivery's retry and
the test controls — each one call of the domain, as the admin API and the command line
make it. Each answers with a page saying what was done (the registration token and the
fulfillment URL's answer for a subscribe), or what was wrong."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from marketmeter.console import forms
from marketmeter.console.pages import CONTROLS_OFF, Pages, Render
from marketmeter.console.paths import PREFIX, customer_path
from marketmeter.console.session import Session
from marketmeter.domain.controls import checked_faults, parse_duration
from marketmeter.domain.errors import CatalogError, NotFound
from marketmeter.domain.service import MeteringService
from marketmeter.domain.usage import iso_z
from marketmeter.fulfillment import subscribe_buyer

Form = Mapping[str, Any]


class Actions:
    def __init__(self, service: MeteringService, render: Render, pages: Pages) -> None:
        self.service = service
        self._render = render
        self._pages = pages

    def _done(self, session: Session, title: str, message: str, back: str, **more: Any) -> Response:
        return self._render("done.html", session, title=title, message=message, back=back, **more)

    # -- the buyer's lifecycle -----------------------------------------------------------

    async def subscribe(self, request: Request, session: Session, form: Form) -> Response:
        code = request.path_params["code"]
        account = forms.text(form, "account")
        bought = await run_in_threadpool(
            subscribe_buyer,
            self.service,
            code,
            account,
            free_trial=form.get("free_trial") == "1",
            offer_id=forms.optional(form, "offer"),
            post=form.get("post") == "1",
        )
        s = bought.done.subscription
        message = (
            f"Subscribed {account} to {code}: customer {s.customer_identifier}."
            if bought.done.changed
            else f"{account} is subscribed to {code} already: nothing changed, a new "
            "registration token was minted."
        )
        return self._render(
            "subscribed.html",
            session,
            message=message,
            code=code,
            account=account,
            token=bought.done.token,
            fulfillment_url=bought.fulfillment_url,
            answer=bought.answer,
            iso=iso_z,
        )

    async def unsubscribe(self, request: Request, session: Session, form: Form) -> Response:
        code, account = request.path_params["code"], request.path_params["account"]
        s = await run_in_threadpool(self.service.marketplace.unsubscribe, code, account)
        ends = iso_z(s.ends_at) if s.ends_at else "—"
        return self._done(
            session,
            "Unsubscribed",
            f"{account} unsubscribed from {code}: usage is accepted until {ends}.",
            customer_path(code, account),
        )

    async def cancel(self, request: Request, session: Session, form: Form) -> Response:
        code, account = request.path_params["code"], request.path_params["account"]
        ended = await run_in_threadpool(self.service.marketplace.cancel, code, account)
        return self._done(
            session,
            "Cancelled",
            f"{account}'s subscription to {code} ended ({len(ended)} subscription"
            f"{'s' if len(ended) != 1 else ''}).",
            customer_path(code, account),
        )

    async def set_entitlement(self, request: Request, session: Session, form: Form) -> Response:
        code, account = request.path_params["code"], request.path_params["account"]
        dimension = forms.text(form, "dimension")
        e = await run_in_threadpool(
            lambda: self.service.marketplace.set_entitlement(
                code,
                account,
                dimension,
                forms.text(form, "value"),
                type_=forms.optional(form, "type"),
                expires_at=forms.time(form, "expires", "Expires"),
            )
        )
        return self._done(
            session,
            "Entitlement set",
            f"{account} is entitled to {e.dimension} = {e.value} ({e.type})"
            f"{' until ' + iso_z(e.expires_at) if e.expires_at else ''}.",
            customer_path(code, account),
        )

    async def remove_entitlement(self, request: Request, session: Session, form: Form) -> Response:
        code, account = request.path_params["code"], request.path_params["account"]
        dimension = forms.text(form, "dimension")
        await run_in_threadpool(
            self.service.marketplace.remove_entitlement, code, account, dimension
        )
        return self._done(
            session,
            "Entitlement removed",
            f"{account}'s entitlement to {dimension} of {code} is removed.",
            customer_path(code, account),
        )

    # -- deliveries ----------------------------------------------------------------------

    async def retry_delivery(self, request: Request, session: Session, form: Form) -> Response:
        d = await run_in_threadpool(
            self.service.marketplace.retry_delivery, request.path_params["delivery_id"]
        )
        return self._done(
            session,
            "Delivery retried",
            f"{d.name} ({d.id}) is due again now, after {d.attempts} attempts: the server "
            "sends it within a second.",
            f"{PREFIX}/deliveries#d-{d.id}",
        )

    # -- test controls -------------------------------------------------------------------

    async def clock(self, request: Request, session: Session, form: Form) -> Response:
        self._controls_on()
        marketplace = self.service.marketplace
        action = forms.text(form, "action")
        if action == "reset":
            await run_in_threadpool(marketplace.reset_clock)
        elif action == "advance":
            by = parse_duration(forms.text(form, "by"))
            await run_in_threadpool(marketplace.advance_clock, by)
        else:
            at = forms.time(form, "at", "Set the clock to")
            if at is None:
                raise _missing("a time to set the clock to")
            real_now = datetime.now(UTC)
            await run_in_threadpool(marketplace.set_clock, at, real_now)
        return self._render("controls.html", session, **await self._controls_after("clock"))

    async def faults(self, request: Request, session: Session, form: Form) -> Response:
        self._controls_on()
        marketplace = self.service.marketplace
        if forms.text(form, "action") == "clear":
            await run_in_threadpool(marketplace.clear_faults)
        else:
            faults = checked_faults(
                forms.optional(form, "operation"),
                form.get("throttle") == "1",
                forms.number(form, "throttle_rate", "Throttle rate"),
                forms.number(form, "unprocessed_rate", "Unprocessed rate"),
                forms.count(form, "latency_ms", "Latency"),
            )
            errors = forms.count(form, "internal_errors", "Internal errors")
            await run_in_threadpool(marketplace.set_faults, faults, errors)
        return self._render("controls.html", session, **await self._controls_after("faults"))

    def _controls_on(self) -> None:
        if not self._pages.test_controls_on:
            raise NotFound(CONTROLS_OFF)

    async def _controls_after(self, changed: str) -> dict[str, Any]:
        values = await run_in_threadpool(self._pages.controls_values)
        return {**values, "changed": changed}


def _missing(what: str) -> CatalogError:
    return CatalogError(f"give {what}")
