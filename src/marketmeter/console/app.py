"""The console as an ASGI application (Starlette), mounted by the server at `/console`.

Every page but sign-in needs a session; every form POST carries its CSRF token. Every
response has a strict Content-Security-Policy (scripts and styles from this server only,
no inline code), and templates escape everything they print (Jinja2's autoescape): product
codes, dimensions and tag values come from catalog files and SDK calls.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from marketmeter.console.actions import Actions
from marketmeter.console.pages import Pages
from marketmeter.console.paths import PREFIX, customer_path, product_path, segment
from marketmeter.console.session import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    SIGN_IN_COOKIE,
    SIGN_IN_SECONDS,
    Session,
    Sessions,
)
from marketmeter.domain.admin_token import token_matches
from marketmeter.domain.errors import MeteringError
from marketmeter.domain.service import MeteringService

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class ConsoleApp:
    """`token_hash`: the SHA-256 of the admin token (None: nobody can sign in — the page
    says why)."""

    def __init__(
        self, service: MeteringService, token_hash: str | None, *, test_controls: bool = False
    ) -> None:
        self.service = service
        self._token_hash = token_hash
        self._sessions = Sessions(token_hash) if token_hash else None
        self._test_controls = test_controls
        self._templates = Environment(
            loader=PackageLoader("marketmeter.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._templates.globals.update(
            product_path=product_path, customer_path=customer_path, segment=segment
        )
        pages = Pages(service, self._render, test_controls=test_controls)
        self._pages = pages
        actions = Actions(service, self._render, pages)
        static = resources.files("marketmeter.console") / "static"
        self._router = Router(
            [
                Route(PREFIX, self._to_overview, methods=["GET"]),
                *(
                    Route(PREFIX + path, self._signed_in(page), methods=["GET"])
                    for path, page in (
                        ("/", pages.overview),
                        ("/products", pages.products),
                        ("/products/{code}", pages.product),
                        ("/products/{code}/customers", pages.find_customer),
                        (_CUSTOMER, pages.customer),
                        ("/usage", pages.usage),
                        ("/records", pages.records),
                        ("/records/{record_id}", pages.record),
                        ("/deliveries", pages.deliveries),
                        ("/test-controls", pages.controls),
                    )
                ),
                *(
                    Route(PREFIX + path, self._acting(action), methods=["POST"])
                    for path, action in (
                        ("/products/{code}/subscribe", actions.subscribe),
                        (_CUSTOMER + "/unsubscribe", actions.unsubscribe),
                        (_CUSTOMER + "/cancel", actions.cancel),
                        (_CUSTOMER + "/entitlements", actions.set_entitlement),
                        (_CUSTOMER + "/entitlements/remove", actions.remove_entitlement),
                        ("/deliveries/{delivery_id}/retry", actions.retry_delivery),
                        ("/test-controls/clock", actions.clock),
                        ("/test-controls/faults", actions.faults),
                    )
                ),
                Route(PREFIX + "/sign-in", self._sign_in_page, methods=["GET"]),
                Route(PREFIX + "/sign-in", self._sign_in, methods=["POST"]),
                Route(PREFIX + "/sign-out", self._sign_out, methods=["POST"]),
                Mount(PREFIX + "/static", StaticFiles(directory=str(static)), name="static"),
            ],
            default=self._nowhere,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def secured(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self._router(scope, receive, secured)

    # -- pages and actions -------------------------------------------------------------

    def _render(
        self, name: str, session: Session | None, status: int = 200, **values: Any
    ) -> HTMLResponse:
        html = self._templates.get_template(name).render(
            prefix=PREFIX,
            csrf=session.csrf if session is not None else "",
            test_controls=self._test_controls,
            **values,
        )
        return HTMLResponse(html, status)

    def _session(self, request: Request) -> Session | None:
        if self._sessions is None:
            return None
        return self._sessions.read(request.cookies.get(SESSION_COOKIE))

    def _signed_in(
        self, page: Callable[[Request, Session], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """`page`, for a request with a session; a redirect to sign-in for one without."""

        async def endpoint(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                return RedirectResponse(PREFIX + "/sign-in", 303)
            if any("\x00" in value for value in request.path_params.values()):
                # No product, customer or record is named so (and PostgreSQL's text cannot).
                return self._render("error.html", session, 404, message="Nothing is named so.")
            return await page(request, session)

        return endpoint

    def _acting(
        self, action: Callable[[Request, Session, FormData], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """`action`, for a form POSTed with a session and its CSRF token; what the domain
        refuses is shown on an error page (404, 409 or 422), nothing changed."""

        async def acting(request: Request, session: Session) -> Response:
            form = await _form(request)
            if form is None:
                return self._render("error.html", session, 400, message=_UNREADABLE)
            if not _csrf_ok(session, form.get("csrf")):
                return self._render("error.html", session, 403, message=_ELSEWHERE)
            try:
                return await action(request, session, form)
            except MeteringError as exc:
                return self._pages.refused(session, exc)

        return self._signed_in(acting)

    async def _nowhere(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An address that is no page of the console: a page saying so (a 404)."""
        session = self._session(Request(scope))
        response = self._render("error.html", session, 404, message="No page is at this address.")
        await response(scope, receive, send)

    async def _to_overview(self, request: Request) -> Response:
        return RedirectResponse(PREFIX + "/", 303)

    # -- signing in and out ----------------------------------------------------------------

    async def _sign_in_page(self, request: Request, *, error: str = "") -> Response:
        if self._sessions is None:
            return self._render("sign_in.html", None, 503, nonce="", error=_NO_TOKEN, disabled=True)
        nonce, cookie = self._sessions.sign_in_nonce()
        response = self._render(
            "sign_in.html", None, 401 if error else 200, nonce=nonce, error=error, disabled=False
        )
        _set_cookie(response, request, SIGN_IN_COOKIE, cookie, SIGN_IN_SECONDS)
        return response

    async def _sign_in(self, request: Request) -> Response:
        if self._sessions is None or self._token_hash is None:  # (both or neither)
            return await self._sign_in_page(request)
        form = await _form(request)
        if form is None:
            return self._render("error.html", None, 400, message=_UNREADABLE)
        nonce, token = str(form.get("nonce", "")), str(form.get("token", ""))
        if not self._sessions.sign_in_nonce_matches(request.cookies.get(SIGN_IN_COOKIE), nonce):
            return await self._sign_in_page(
                request, error="The sign-in form expired, or came from elsewhere: try again."
            )
        if not token_matches(self._token_hash, token):
            return await self._sign_in_page(request, error="That is not the admin token.")
        cookie = self._sessions.issue()
        response = RedirectResponse(PREFIX + "/", 303)
        _set_cookie(response, request, SESSION_COOKIE, cookie, SESSION_SECONDS)
        response.delete_cookie(SIGN_IN_COOKIE, path=PREFIX)
        return response

    async def _sign_out(self, request: Request) -> Response:
        session = self._session(request)
        form = await _form(request)
        if session is not None and (form is None or not _csrf_ok(session, form.get("csrf"))):
            return self._render("error.html", session, 403, message=_ELSEWHERE)
        response = RedirectResponse(PREFIX + "/sign-in", 303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response


_CUSTOMER = "/products/{code}/customers/{account}"
_ELSEWHERE = "The form came from elsewhere, or its page is too old: reload it and try again."

_NO_TOKEN = (
    "This server has no admin token, so nobody can sign in: start it with "
    "MARKETMETER_ADMIN_TOKEN set (or let it generate one)."
)


_UNREADABLE = "The form could not be read: send it again from its page."


async def _form(request: Request) -> FormData | None:
    """The posted form; None when it cannot be read (a malformed or oversized body)."""
    try:
        return await request.form()
    except MultiPartException:
        return None


def _csrf_ok(session: Session, presented: object) -> bool:
    return isinstance(presented, str) and hmac.compare_digest(
        session.csrf.encode(), presented.encode()
    )


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
