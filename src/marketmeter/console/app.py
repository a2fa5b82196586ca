"""The console as an ASGI application (Starlette), mounted by the server at `/console`.

Every page but sign-in needs a session; every form POST carries its CSRF token. Every
response has a strict Content-Security-Policy (scripts and styles from this server only,
no inline code), and templates escape everything they print (Jinja2's autoescape): product
codes, dimensions and tag values come from catalog files and SDK calls.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from marketmeter.console.session import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    SIGN_IN_COOKIE,
    SIGN_IN_SECONDS,
    Session,
    Sessions,
)
from marketmeter.domain.admin_token import token_matches
from marketmeter.domain.errors import NotFound
from marketmeter.domain.models import Product
from marketmeter.domain.ports import RecordFilter
from marketmeter.domain.service import MeteringService
from marketmeter.domain.usage import iso_z, known_product, stored_record

PREFIX = "/console"
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
        static = resources.files("marketmeter.console") / "static"
        self._router = Router(
            [
                Route(PREFIX, self._to_overview, methods=["GET"]),
                *(
                    Route(PREFIX + path, self._signed_in(page), methods=["GET"])
                    for path, page in (
                        ("/", self._overview),
                        ("/products", self._products),
                        ("/products/{code}", self._product),
                        ("/records", self._records),
                        ("/records/{record_id}", self._record),
                    )
                ),
                Route(PREFIX + "/sign-in", self._sign_in_page, methods=["GET"]),
                Route(PREFIX + "/sign-in", self._sign_in, methods=["POST"]),
                Route(PREFIX + "/sign-out", self._sign_out, methods=["POST"]),
                Mount(PREFIX + "/static", StaticFiles(directory=str(static)), name="static"),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def secured(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self._router(scope, receive, secured)

    # -- pages ---------------------------------------------------------------------------

    def _page(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self._templates.get_template(name).render(prefix=PREFIX, **values)
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
            return await page(request, session)

        return endpoint

    async def _to_overview(self, request: Request) -> Response:
        return RedirectResponse(PREFIX + "/", 303)

    async def _overview(self, request: Request, session: Session) -> Response:
        now = self.service.clock.now()
        products = await run_in_threadpool(self._product_totals, now)
        return self._page(
            "overview.html",
            csrf=session.csrf,
            now=iso_z(now),
            products=products,
            test_controls=self._test_controls,
        )

    async def _products(self, request: Request, session: Session) -> Response:
        products = await run_in_threadpool(self.service.store.list_products)
        return self._page(
            "products.html",
            csrf=session.csrf,
            products=sorted(products, key=lambda p: p.product_code),
        )

    async def _product(self, request: Request, session: Session) -> Response:
        code = request.path_params["code"]
        try:
            product, customers = await run_in_threadpool(self._customers, code)
        except NotFound as exc:
            return self._page("error.html", 404, csrf=session.csrf, message=str(exc))
        return self._page("product.html", csrf=session.csrf, product=product, customers=customers)

    def _customers(self, code: str) -> tuple[Product, list[dict[str, Any]]]:
        """The product, and each subscription with its state and usage this month."""
        product = known_product(self.service.store, code)
        now = self.service.clock.now()
        month = self.service.usage_report(code, by="month", group=["customer"])
        used = {r.keys["customer_aws_account_id"]: (r.quantity, r.records) for r in month.rows}
        nothing = (Decimal(0), 0)
        customers = [
            {
                "account": s.customer_aws_account_id,
                "identifier": s.customer_identifier,
                "state": s.state(now),
                "since": iso_z(s.created_at),
                "used": used.get(s.customer_aws_account_id, nothing),
            }
            for s in sorted(
                self.service.store.product_subscriptions(code),
                key=lambda s: s.customer_aws_account_id,
            )
        ]
        return product, customers

    async def _records(self, request: Request, session: Session) -> Response:
        q = request.query_params
        filters = {k: q.get(k, "").strip() for k in RECORD_FILTERS}
        where = RecordFilter(
            product_code=filters["product"] or None,
            customer=filters["customer"] or None,
            dimension=filters["dimension"] or None,
            operation=filters["operation"] or None,
        )
        after = _whole(q.get("after"), 0, 0, 2**62)
        limit = _whole(q.get("limit"), PAGE, 1, MAX_PAGE)
        rows = await run_in_threadpool(
            self.service.store.page_records, where, after=after, limit=limit + 1
        )
        more = len(rows) > limit
        rows = rows[:limit]
        next_query = None
        if more:
            kept = {k: v for k, v in filters.items() if v}
            next_query = urlencode({**kept, "limit": limit, "after": rows[-1].seq})
        return self._page(
            "records.html",
            csrf=session.csrf,
            filters=filters,
            records=[stored_record(r.record) for r in rows],
            next_query=next_query,
            iso=iso_z,
        )

    async def _record(self, request: Request, session: Session) -> Response:
        record_id = request.path_params["record_id"]
        found = await run_in_threadpool(self.service.store.get_record, record_id)
        if found is None:
            return self._page(
                "error.html", 404, csrf=session.csrf, message=f"no record {record_id!r}"
            )
        return self._page("record.html", csrf=session.csrf, r=stored_record(found), iso=iso_z)

    def _product_totals(self, now: datetime) -> list[dict[str, Any]]:
        hour = now.replace(minute=0, second=0, microsecond=0)
        found = []
        for product in sorted(self.service.store.list_products(), key=lambda p: p.product_code):
            code = product.product_code
            month = self.service.usage_report(code, by="month", group=[])
            this_hour = self.service.usage_report(
                code, by="hour", group=[], start=hour, end=hour + timedelta(hours=1)
            )
            found.append(
                {
                    "product": product,
                    "month": month.total,
                    "month_records": sum(r.records for r in month.rows),
                    "hour": this_hour.total,
                    "hour_records": sum(r.records for r in this_hour.rows),
                }
            )
        return found

    # -- signing in and out ----------------------------------------------------------------

    async def _sign_in_page(self, request: Request, *, error: str = "") -> Response:
        if self._sessions is None:
            return self._page("sign_in.html", 503, nonce="", error=_NO_TOKEN, disabled=True)
        nonce, cookie = self._sessions.sign_in_nonce()
        response = self._page(
            "sign_in.html", 401 if error else 200, nonce=nonce, error=error, disabled=False
        )
        _set_cookie(response, request, SIGN_IN_COOKIE, cookie, SIGN_IN_SECONDS)
        return response

    async def _sign_in(self, request: Request) -> Response:
        if self._sessions is None or self._token_hash is None:  # (both or neither)
            return await self._sign_in_page(request)
        form = await request.form()
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
        form = await request.form()
        if session is not None and not _csrf_ok(session, form.get("csrf")):
            return self._page("error.html", 403, message="The form came from elsewhere.")
        response = RedirectResponse(PREFIX + "/sign-in", 303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response


RECORD_FILTERS = ("product", "customer", "dimension", "operation")
PAGE = 50
MAX_PAGE = 500


def _whole(text: str | None, default: int, low: int, high: int) -> int:
    """A whole number from a query parameter, within [low, high]; `default` if it is none."""
    if text is None or not text.strip().isdigit():
        return default
    return max(low, min(high, int(text)))


_NO_TOKEN = (
    "This server has no admin token, so nobody can sign in: start it with "
    "MARKETMETER_ADMIN_TOKEN set (or let it generate one)."
)


def _csrf_ok(session: Session, presented: object) -> bool:
    return isinstance(presented, str) and hmac.compare_digest(session.csrf, presented)


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
