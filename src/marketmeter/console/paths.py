"""The console's addresses of things named by catalogs and SDK calls, each name one whole
path segment (a product code may hold "/" or "."): for templates and redirects alike."""

from __future__ import annotations

from urllib.parse import quote

PREFIX = "/console"


def segment(name: str) -> str:
    return quote(name, safe="")


def product_path(code: str) -> str:
    return f"{PREFIX}/products/{segment(code)}"


def customer_path(code: str, account: str) -> str:
    return f"{product_path(code)}/customers/{segment(account)}"
