"""The fulfillment URL: where AWS Marketplace sends a buyer who has just subscribed.

The buyer's browser POSTs a form with the registration token
(`x-amzn-marketplace-token`); we resolve it with ResolveCustomer, remember the customer in
DynamoDB and send the browser on to the welcome page. A plain WSGI application: run it
behind any WSGI server, or with `serve()` for local use and tests.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from botocore.exceptions import ClientError

from seller_app.aws import ClientFactory, dynamodb_resource, metering_client

TOKEN_FIELD = "x-amzn-marketplace-token"
BAD_TOKEN_ERRORS = frozenset({"InvalidTokenException", "ExpiredTokenException"})
MAX_BODY = 64 * 1024

log = logging.getLogger(__name__)


def customers_table_name() -> str:
    return os.environ.get("CUSTOMERS_TABLE") or "customers"


@dataclass(frozen=True)
class Customer:
    aws_account_id: str
    product_code: str
    customer_identifier: str | None = None
    license_arn: str | None = None

    def as_item(self) -> dict[str, str]:
        item = {"customer_aws_account_id": self.aws_account_id, "product_code": self.product_code}
        if self.customer_identifier is not None:
            item["customer_identifier"] = self.customer_identifier
        if self.license_arn is not None:
            item["license_arn"] = self.license_arn
        return item


class InvalidToken(Exception):
    """AWS refused the registration token (forged, or expired)."""


class FulfillmentApp:
    """The WSGI application: `POST /fulfillment`, and `GET /welcome`."""

    def __init__(
        self,
        table_name: str | None = None,
        *,
        metering_factory: ClientFactory = metering_client,
        dynamodb_factory: ClientFactory = dynamodb_resource,
    ) -> None:
        self.table_name = table_name or customers_table_name()
        self._metering = metering_factory()
        self._customers = dynamodb_factory().Table(self.table_name)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO") or "/"
        if path == "/fulfillment":
            if method != "POST":
                return _text(
                    start_response, "405 Method Not Allowed", "POST only\n", [("Allow", "POST")]
                )
            return self._fulfil(environ, start_response)
        if path == "/welcome" and method == "GET":
            return _text(start_response, "200 OK", "Welcome aboard!\n")
        return _text(start_response, "404 Not Found", "Not found\n")

    def _fulfil(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        token = _form(environ).get(TOKEN_FIELD)
        if not token:
            return _text(start_response, "400 Bad Request", "Missing registration token\n")
        try:
            customer = self.register(token)
        except InvalidToken:
            return _text(
                start_response, "400 Bad Request", "Invalid or expired registration token\n"
            )
        except Exception:
            log.exception("could not register a customer")
            return _text(start_response, "500 Internal Server Error", "Please try again\n")
        location = "/welcome?customer=" + quote(customer.aws_account_id)
        return _text(start_response, "302 Found", "", [("Location", location)])

    def register(self, token: str) -> Customer:
        """Resolve the token to the customer, and remember the customer."""
        try:
            resolved = self._metering.resolve_customer(RegistrationToken=token)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in BAD_TOKEN_ERRORS:
                raise InvalidToken(str(exc)) from exc
            raise
        customer = Customer(
            aws_account_id=resolved["CustomerAWSAccountId"],
            product_code=resolved["ProductCode"],
            customer_identifier=resolved.get("CustomerIdentifier"),
            license_arn=resolved.get("LicenseArn"),
        )
        self._customers.put_item(Item=customer.as_item())
        return customer


def _form(environ: WSGIEnvironment) -> dict[str, str]:
    """The URL-encoded form of the request body (first value of each field)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    length = min(max(length, 0), MAX_BODY)
    body = environ["wsgi.input"].read(length) if length else b""
    fields = parse_qs(body.decode("utf-8", errors="replace"))
    return {name: values[0] for name, values in fields.items()}


def _text(
    start_response: StartResponse,
    status: str,
    text: str,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    body = text.encode("utf-8")
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *(headers or []),
        ],
    )
    return [body]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - " + format, self.address_string(), *args)


def serve(
    port: int = 8080, app: WSGIApplication | None = None, *, host: str = "127.0.0.1"
) -> WSGIServer:
    """Serve `app` (default: a `FulfillmentApp`) in a background thread; port 0 picks a
    free one (`server.server_port`). Stop it with `shutdown()` and `server_close()`."""
    server = make_server(host, port, app or FulfillmentApp(), handler_class=_QuietHandler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="fulfillment", daemon=True
    ).start()
    return server
