"""The console's pages (GET): each reads through the domain — the same functions the admin
API and the command line call — and renders one template. Blocking reads run on a
thread."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from marketmeter.console import forms
from marketmeter.console.chart import activity_chart, usage_chart
from marketmeter.console.paths import customer_path
from marketmeter.console.session import Session
from marketmeter.domain.activity import UsageFocus, hourly_usage, parse_tag, recent_activity
from marketmeter.domain.errors import CatalogError, Conflict, MeteringError, NotFound
from marketmeter.domain.models import OPERATIONS
from marketmeter.domain.outbox import retryable
from marketmeter.domain.ports import RecordFilter
from marketmeter.domain.service import MeteringService
from marketmeter.domain.usage import UsageWarning, iso_z, known_product, stored_record

Render = Callable[..., Response]
"""`render(template, session, status=200, **values)`."""

RECORD_FILTERS = ("product", "customer", "license", "dimension", "operation")
PAGE = 50
MAX_PAGE = 500
WARNING_HOURS = 24
"""The overview's warnings cover the last day (`usage check` covers any range)."""
MAX_CUSTOMERS = 1000
"""A product's page lists its first customers (by account); the rest are a search away."""
CONTROLS_OFF = "test controls are off: start the server with --test-controls"
WARNING_RECORDS = 100_000
"""A product with more records than this in the day is not checked on every view of the
overview (the check reads them all): the page says so, and `usage check` does it."""
SHOWN = 10
"""At most this many failed deliveries and warnings on the overview."""


def refusal_status(exc: MeteringError) -> int:
    """The HTTP status of a page showing what the domain refused."""
    if isinstance(exc, NotFound):
        return 404
    return 409 if isinstance(exc, Conflict) else 422


class Pages:
    def __init__(self, service: MeteringService, render: Render, *, test_controls: bool) -> None:
        self.service = service
        self._render = render
        self.test_controls_on = test_controls

    def refused(self, session: Session | None, exc: MeteringError) -> Response:
        """The page saying what the domain refused, and why."""
        return self._render("error.html", session, refusal_status(exc), message=str(exc))

    # -- overview ----------------------------------------------------------------------

    async def overview(self, request: Request, session: Session) -> Response:
        values = await run_in_threadpool(self._overview)
        return self._render("overview.html", session, **values)

    def _overview(self) -> dict[str, Any]:
        service = self.service
        now = service.clock.now()
        activity = recent_activity(service.store, now)
        failed = service.marketplace.deliveries(failed_only=True)
        warnings: list[tuple[str, UsageWarning]] = []
        unchecked: list[tuple[str, int]] = []
        products = sorted(service.store.list_products(), key=lambda p: p.product_code)
        since = now - timedelta(hours=WARNING_HOURS)
        for product in products:
            code = product.product_code
            # The warnings read the day's records one by one; the day's count is a rollup.
            day = service.usage_report(code, by="hour", group=[], start=since, end=now)
            records = sum(r.records for r in day.rows)
            if records > WARNING_RECORDS:
                unchecked.append((code, records))
                continue
            warnings += [(code, w) for w in service.usage_warnings(code, start=since, end=now)]
        return {
            "now": iso_z(now),
            "products": [self._totals(p.product_code, now) | {"product": p} for p in products],
            "activity": activity,
            "activity_chart": activity_chart(activity),
            "failed": failed[:SHOWN],
            "failed_count": len(failed),
            "warnings": warnings[:SHOWN],
            "warning_count": len(warnings),
            "unchecked": unchecked,
            "warning_hours": WARNING_HOURS,
        }

    def _totals(self, code: str, now: datetime) -> dict[str, Any]:
        hour = now.replace(minute=0, second=0, microsecond=0)
        month = self.service.usage_report(code, by="month", group=[])
        this_hour = self.service.usage_report(
            code, by="hour", group=[], start=hour, end=hour + timedelta(hours=1)
        )
        return {
            "month": month.total,
            "month_records": sum(r.records for r in month.rows),
            "hour": this_hour.total,
            "hour_records": sum(r.records for r in this_hour.rows),
        }

    # -- products and customers ----------------------------------------------------------

    async def products(self, request: Request, session: Session) -> Response:
        products = await run_in_threadpool(self.service.store.list_products)
        return self._render(
            "products.html", session, products=sorted(products, key=lambda p: p.product_code)
        )

    async def product(self, request: Request, session: Session) -> Response:
        try:
            values = await run_in_threadpool(self._product, request.path_params["code"])
        except MeteringError as exc:
            return self.refused(session, exc)
        return self._render("product.html", session, **values)

    def _product(self, code: str) -> dict[str, Any]:
        """The product, and each subscription with its state and usage this month."""
        store = self.service.store
        product = known_product(store, code)
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
                store.product_subscriptions(code), key=lambda s: s.customer_aws_account_id
            )
        ]
        return {
            "product": product,
            "customers": customers[:MAX_CUSTOMERS],
            "customer_count": len(customers),
        }

    async def find_customer(self, request: Request, session: Session) -> Response:
        """The product page's "find a customer" form: to that customer's page."""
        account = forms.text(request.query_params, "account")
        if not account:
            return self.refused(session, CatalogError("give the customer's AWS account ID"))
        return RedirectResponse(customer_path(request.path_params["code"], account), 303)

    async def customer(self, request: Request, session: Session) -> Response:
        code, account = request.path_params["code"], request.path_params["account"]
        try:
            values = await run_in_threadpool(self._customer, code, account)
        except MeteringError as exc:
            return self.refused(session, exc)
        return self._render("customer.html", session, **values)

    def _customer(self, code: str, account: str) -> dict[str, Any]:
        """A buyer's subscription to the product, its entitlements and usage this month."""
        store = self.service.store
        product = known_product(store, code)
        found = store.find_subscriptions(code, customer_aws_account_id=account)
        if not found:
            raise NotFound(f"{account} has no subscription to {code}")
        subscription = found[-1]
        now = self.service.clock.now()
        month = self.service.usage_report(code, by="month", group=["customer", "dimension"])
        usage = [r for r in month.rows if r.keys["customer_aws_account_id"] == account]
        return {
            "product": product,
            "s": subscription,
            "state": subscription.state(now),
            "entitlements": store.entitlements_of(subscription.license_arn)
            if product.has_contract
            else [],
            "usage": usage,
            "usage_total": sum((r.quantity for r in usage), Decimal(0)),
            "iso": iso_z,
            "now": now,
        }

    # -- usage ---------------------------------------------------------------------------

    async def usage(self, request: Request, session: Session) -> Response:
        q = request.query_params
        fields = {k: forms.text(q, k) for k in ("product", "customer", "dimension", "tag")}
        values: dict[str, Any] = {"fields": fields, "error": "", "usage": None, "iso": iso_z}
        values["start"], values["end"] = forms.text(q, "from"), forms.text(q, "to")
        try:
            values |= await run_in_threadpool(self._usage, q, fields)
        except MeteringError as exc:
            products = await run_in_threadpool(self.service.store.list_products)
            values |= {
                "error": str(exc),
                "products": sorted(p.product_code for p in products),
                "code": fields["product"],
            }
            return self._render("usage.html", session, refusal_status(exc), **values)
        return self._render("usage.html", session, **values)

    def _usage(self, q: Mapping[str, str], fields: dict[str, str]) -> dict[str, Any]:
        products = sorted(p.product_code for p in self.service.store.list_products())
        code = fields["product"] or (products[0] if products else "")
        found: dict[str, Any] = {"products": products, "code": code}
        if not code:
            return found
        tag = parse_tag(fields["tag"]) if fields["tag"] else None
        usage = hourly_usage(
            self.service.store,
            self.service.clock.now(),
            code,
            start=forms.time(q, "from", "From"),
            end=forms.time(q, "to", "To"),
            focus=UsageFocus(fields["customer"] or None, fields["dimension"] or None, tag),
        )
        return found | {
            "usage": usage,
            "chart": usage_chart(usage),
            "start": forms.for_input(usage.report.start),
            "end": forms.for_input(usage.report.end),
        }

    # -- records -------------------------------------------------------------------------

    async def records(self, request: Request, session: Session) -> Response:
        q = request.query_params
        filters = {k: forms.text(q, k) for k in (*RECORD_FILTERS, "from", "to")}
        try:
            where = RecordFilter(
                product_code=filters["product"] or None,
                customer=filters["customer"] or None,
                license_arn=filters["license"] or None,
                dimension=filters["dimension"] or None,
                operation=filters["operation"] or None,
                start=forms.time(q, "from", "Usage from"),
                end=forms.time(q, "to", "Usage until"),
            )
        except CatalogError as exc:
            return self._render(
                "records.html",
                session,
                422,
                filters=filters,
                records=[],
                next_query=None,
                error=str(exc),
                iso=iso_z,
            )
        after = forms.whole(q.get("after"), 0, 0, 2**62)
        limit = forms.whole(q.get("limit"), PAGE, 1, MAX_PAGE)
        rows = await run_in_threadpool(
            self.service.store.page_records, where, after=after, limit=limit + 1
        )
        more = len(rows) > limit
        rows = rows[:limit]
        next_query = None
        if more:
            kept = {k: v for k, v in filters.items() if v}
            next_query = urlencode({**kept, "limit": limit, "after": rows[-1].seq})
        return self._render(
            "records.html",
            session,
            filters=filters,
            records=[stored_record(r.record) for r in rows],
            next_query=next_query,
            error="",
            iso=iso_z,
        )

    async def record(self, request: Request, session: Session) -> Response:
        record_id = request.path_params["record_id"]
        found = await run_in_threadpool(self.service.store.get_record, record_id)
        if found is None:
            return self.refused(session, NotFound(f"no record {record_id!r}"))
        return self._render("record.html", session, r=stored_record(found), iso=iso_z)

    # -- deliveries ----------------------------------------------------------------------

    async def deliveries(self, request: Request, session: Session) -> Response:
        q = request.query_params
        product = forms.text(q, "product")
        failed = q.get("failed") == "1"
        reports = await run_in_threadpool(
            self.service.marketplace.deliveries, product or None, failed_only=failed
        )
        return self._render(
            "deliveries.html",
            session,
            reports=reports,
            product=product,
            failed=failed,
            iso=iso_z,
            retryable=retryable,
        )

    # -- test controls -------------------------------------------------------------------

    async def controls(self, request: Request, session: Session) -> Response:
        if not self.test_controls_on:
            return self.refused(session, NotFound(CONTROLS_OFF))
        values = await run_in_threadpool(self.controls_values)
        return self._render("controls.html", session, **values, changed="")

    def controls_values(self) -> dict[str, Any]:
        controls = self.service.marketplace.test_controls()
        return {
            "controls": controls,
            # From what is stored, not this process's clock: that follows within a second.
            "service_time": iso_z(datetime.now(UTC) + controls.clock_offset),
            "offset": controls.clock_offset,
            "operations": OPERATIONS,
        }
