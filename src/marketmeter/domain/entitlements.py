"""Entitlements of contract products: typed values, and GetEntitlements — the filters,
the pages, what the seller may see.

A value is an integer, a decimal, a boolean or a string. Read from text (the command line,
a catalog file) it is an integer if it reads as one, else a decimal, else true/false, else
a string — unless a type is given. GetEntitlements answers the product's seller only
(anyone else: `InvalidParameterException` naming the product, as if it did not exist),
never an expired entitlement, at most 25 a page, and a `NextToken` while more remain.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import orjson

from marketmeter.clock import Clock
from marketmeter.domain.errors import CatalogError, InvalidParameter
from marketmeter.domain.models import (
    ENTITLEMENT_TYPES,
    Caller,
    Entitlement,
    EntitlementType,
    Subscription,
)
from marketmeter.domain.ports import EntitlementQuery, Reader

FILTERS = ("CUSTOMER_IDENTIFIER", "DIMENSION", "CUSTOMER_AWS_ACCOUNT_ID", "LICENSE_ARN")
DEFAULT_PAGE = 25


def typed_value(value: str, type_: str | None = None) -> tuple[EntitlementType, str]:
    """The value's type and canonical text: "25" integer, "2.50" decimal "2.50", "TRUE"
    boolean "true", anything else a string."""
    if type_ is not None and type_ not in ENTITLEMENT_TYPES:
        raise CatalogError(f"type must be one of {', '.join(ENTITLEMENT_TYPES)}, not {type_!r}")
    text = value.strip() if type_ != "string" else value
    if type_ in (None, "integer"):
        try:
            return "integer", str(int(text))
        except ValueError:
            if type_ == "integer":
                raise CatalogError(f"not an integer: {value!r}") from None
    if type_ in (None, "decimal"):
        try:
            number = Decimal(text)
            if not number.is_finite():
                raise InvalidOperation
            return "decimal", str(number)
        except InvalidOperation:
            if type_ == "decimal":
                raise CatalogError(f"not a decimal number: {value!r}") from None
    if type_ in (None, "boolean"):
        if text.lower() in ("true", "false"):
            return "boolean", text.lower()
        if type_ == "boolean":
            raise CatalogError(f"not true or false: {value!r}")
    if not value:
        raise CatalogError("an entitlement's value cannot be empty")
    return "string", value


def wire_value(entitlement: Entitlement) -> dict[str, object]:
    """The `Value` member of GetEntitlements: the one member that fits."""
    if entitlement.type == "integer":
        return {"IntegerValue": int(entitlement.value)}
    if entitlement.type == "decimal":
        return {"DoubleValue": float(entitlement.value)}
    if entitlement.type == "boolean":
        return {"BooleanValue": entitlement.value == "true"}
    return {"StringValue": entitlement.value}


@dataclass(frozen=True, slots=True)
class EntitlementsPage:
    found: Sequence[tuple[Subscription, Entitlement]]
    next_token: str | None


class Entitlements:
    def __init__(self, reader: Reader, clock: Clock) -> None:
        self._reader = reader
        self._clock = clock

    def get(
        self,
        caller: Caller,
        product_code: str,
        filters: Mapping[str, Sequence[str]],
        max_results: int | None,
        next_token: str | None,
    ) -> EntitlementsPage:
        product = self._reader.get_product(product_code)
        if product is None or product.seller_account_id != caller.account_id:
            raise InvalidParameter(
                f"The product code {product_code} is not valid for this account."
            )
        unknown = sorted(set(filters) - set(FILTERS))
        if unknown:
            raise InvalidParameter(f"Unknown filter: {', '.join(unknown)}.")
        if "CUSTOMER_IDENTIFIER" in filters and "CUSTOMER_AWS_ACCOUNT_ID" in filters:
            raise InvalidParameter(
                "The filters CUSTOMER_IDENTIFIER and CUSTOMER_AWS_ACCOUNT_ID cannot be used "
                "together."
            )
        limit = max_results or DEFAULT_PAGE
        after = _decode_token(next_token, product_code)
        found = self._reader.page_entitlements(
            EntitlementQuery(
                product_code=product_code,
                identifiers=tuple(filters.get("CUSTOMER_IDENTIFIER", ())),
                accounts=tuple(filters.get("CUSTOMER_AWS_ACCOUNT_ID", ())),
                license_arns=tuple(filters.get("LICENSE_ARN", ())),
                dimensions=tuple(filters.get("DIMENSION", ())),
                now=self._clock.now(),
                after=after,
                limit=limit + 1,
            )
        )
        more = len(found) > limit
        page = found[:limit]
        token = None
        if more:
            last = page[-1][1]
            token = _encode_token(product_code, (last.license_arn, last.dimension))
        return EntitlementsPage(page, token)


def _encode_token(product_code: str, after: tuple[str, str]) -> str:
    raw = orjson.dumps([product_code, *after])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str | None, product_code: str) -> tuple[str, str] | None:
    if token is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        product, license_arn, dimension = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidParameter("The NextToken is not valid.") from None
    if product != product_code or not isinstance(license_arn, str):
        raise InvalidParameter("The NextToken is not valid.")
    return license_arn, str(dimension)
