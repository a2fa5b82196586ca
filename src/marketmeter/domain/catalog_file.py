"""Reading a catalog file: the loaded YAML/JSON document becomes a checked `Catalog`, with
every mistake reported with its place (e.g. `products[2].type`). `catalog.CatalogService`
applies it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from marketmeter.domain.entitlements import typed_value
from marketmeter.domain.errors import CatalogError
from marketmeter.domain.models import (
    OPERATIONS,
    PRICINGS,
    PRODUCT_TYPES,
    AccessKey,
    Account,
    Catalog,
    CatalogEntitlement,
    CatalogSubscription,
    Price,
    Product,
)

ACCOUNT_ID = re.compile(r"[0-9]{12}")
ACCESS_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")
PRODUCT_CODE = re.compile(r"[-a-zA-Z0-9/=:_.@]{1,255}")
AGREEMENT_ID = re.compile(r"[A-Za-z0-9_/-]{1,64}")
_DECIMAL = re.compile(r"[0-9]{1,15}(\.[0-9]{1,12})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
LICENSE_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:[A-Za-z0-9][A-Za-z0-9_/.-]{0,62}:[A-Za-z0-9_/.-]{0,63}:"
    r"[A-Za-z0-9_/.-]{0,63}:[A-Za-z0-9][A-Za-z0-9:_/+=,@.-]{0,1023}"
)
MAX_DIMENSIONS = 24


def parse_catalog(document: Any) -> Catalog:
    errors: list[str] = []
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise CatalogError("the catalog must be a mapping with accounts, products, subscriptions")
    _no_unknown(document, "", {"accounts", "products", "subscriptions"}, errors)
    accounts: list[Account] = []
    keys: list[AccessKey] = []
    for i, item in enumerate(_list(document, "accounts", errors)):
        at = f"accounts[{i}]"
        if not _mapping(item, at, errors):
            continue
        _no_unknown(item, at, {"account_id", "name", "access_keys"}, errors)
        account_id = _account_id(item.get("account_id"), f"{at}.account_id", errors)
        name = _opt_str(item, "name", at, errors)
        accounts.append(Account(account_id, name))
        for j, key in enumerate(_list(item, "access_keys", errors, at)):
            keys.append(_access_key(key, f"{at}.access_keys[{j}]", account_id, errors))
    products = [
        _product(item, f"products[{i}]", errors)
        for i, item in enumerate(_list(document, "products", errors))
    ]
    subscriptions = [
        _subscription(item, f"subscriptions[{i}]", errors)
        for i, item in enumerate(_list(document, "subscriptions", errors))
    ]
    _unique([a.account_id for a in accounts], "account_id", errors)
    _unique([k.access_key_id for k in keys], "access_key_id", errors)
    _unique([p.product_code for p in products], "product_code", errors)
    if errors:
        raise CatalogError("the catalog has errors:\n  " + "\n  ".join(errors))
    return Catalog(tuple(accounts), tuple(keys), tuple(products), tuple(subscriptions))


def _access_key(item: Any, at: str, account_id: str, errors: list[str]) -> AccessKey:
    if not _mapping(item, at, errors):
        return AccessKey("", "", account_id)
    _no_unknown(
        item,
        at,
        {
            "access_key_id",
            "secret_access_key",
            "session_token",
            "expires_at",
            "region",
            "platform",
            "actions",
        },
        errors,
    )
    key_id = _str(item, "access_key_id", at, errors)
    if key_id and not ACCESS_KEY_ID.fullmatch(key_id):
        errors.append(
            f"{at}.access_key_id: 16 to 128 upper-case letters and digits, not {key_id!r}"
        )
    secret = _str(item, "secret_access_key", at, errors)
    actions = item.get("actions")
    action_set: frozenset[str] | None = None
    if actions is not None:
        if not isinstance(actions, list) or not all(a in OPERATIONS for a in actions):
            errors.append(f"{at}.actions: a list of {', '.join(OPERATIONS)}")
        else:
            action_set = frozenset(actions)
    return AccessKey(
        access_key_id=key_id,
        secret_access_key=secret,
        account_id=account_id,
        session_token=_opt_str(item, "session_token", at, errors),
        expires_at=_opt_time(item, "expires_at", at, errors),
        region=_opt_str(item, "region", at, errors),
        platform=_opt_str(item, "platform", at, errors),
        actions=action_set,
    )


def _product(item: Any, at: str, errors: list[str]) -> Product:
    if not _mapping(item, at, errors):
        return Product("", "", "saas", ())
    _no_unknown(
        item,
        at,
        {
            "product_code",
            "seller_account_id",
            "type",
            "dimensions",
            "fulfillment_url",
            "concurrent_agreements",
            "pricing",
            "prices",
        },
        errors,
    )
    code = _str(item, "product_code", at, errors)
    if code and not PRODUCT_CODE.fullmatch(code):
        errors.append(f"{at}.product_code: 1 to 255 of a-z A-Z 0-9 - / = : _ . @, not {code!r}")
    seller = _account_id(item.get("seller_account_id"), f"{at}.seller_account_id", errors)
    kind = item.get("type", "saas")
    if kind not in PRODUCT_TYPES:
        errors.append(f"{at}.type: one of {', '.join(PRODUCT_TYPES)}, not {kind!r}")
        kind = "saas"
    dimensions = item.get("dimensions")
    if (
        not isinstance(dimensions, list)
        or not dimensions
        or not all(isinstance(d, str) and 1 <= len(d) <= 255 for d in dimensions)
    ):
        errors.append(f"{at}.dimensions: a non-empty list of names (1 to 255 characters)")
        dimensions = []
    elif len(set(dimensions)) != len(dimensions):
        errors.append(f"{at}.dimensions: a dimension is listed twice")
    elif kind != "saas" and len(dimensions) > MAX_DIMENSIONS:
        errors.append(f"{at}.dimensions: at most {MAX_DIMENSIONS} for an {kind} product")
    concurrent = item.get("concurrent_agreements", False)
    if not isinstance(concurrent, bool):
        errors.append(f"{at}.concurrent_agreements: true or false")
        concurrent = False
    pricing = item.get("pricing", "usage")
    if pricing not in PRICINGS:
        errors.append(f"{at}.pricing: one of {', '.join(PRICINGS)}, not {pricing!r}")
        pricing = "usage"
    return Product(
        product_code=code,
        seller_account_id=seller,
        type=kind,
        dimensions=tuple(dimensions),
        fulfillment_url=_opt_str(item, "fulfillment_url", at, errors),
        concurrent_agreements=concurrent,
        pricing=pricing,
        prices=_prices(item.get("prices"), dimensions, f"{at}.prices", errors),
    )


def _prices(value: Any, dimensions: list[str], at: str, errors: list[str]) -> dict[str, Price]:
    """`prices: {dimension: {price_per_unit: "0.10", currency: USD}}` (optional)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errors.append(f"{at}: a mapping of dimension to price_per_unit and currency")
        return {}
    prices = {}
    for dimension, price in value.items():
        where = f"{at}.{dimension}"
        if dimension not in dimensions:
            errors.append(f"{where}: not a dimension of the product")
            continue
        if not isinstance(price, Mapping):
            errors.append(f"{where}: price_per_unit and currency")
            continue
        _no_unknown(price, where, {"price_per_unit", "currency"}, errors)
        amount = price.get("price_per_unit")
        text = repr(amount) if isinstance(amount, float) else amount
        if (
            isinstance(amount, bool)
            or not isinstance(text, (str, int))
            or not _DECIMAL.fullmatch(str(text))
        ):
            errors.append(f'{where}.price_per_unit: a decimal of 0 or more, as "0.125"')
            continue
        currency = price.get("currency")
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            errors.append(f"{where}.currency: an ISO 4217 code of three capitals, as USD")
            continue
        prices[dimension] = Price(str(Decimal(str(text))), currency)
    return prices


def _subscription(item: Any, at: str, errors: list[str]) -> CatalogSubscription:
    if not _mapping(item, at, errors):
        return CatalogSubscription("", "")
    _no_unknown(
        item,
        at,
        {
            "product_code",
            "customer_aws_account_id",
            "customer_identifier",
            "license_arn",
            "agreement_id",
            "status",
            "entitlements",
        },
        errors,
    )
    license_arn = _opt_str(item, "license_arn", at, errors)
    if license_arn is not None and not LICENSE_ARN.fullmatch(license_arn):
        errors.append(f"{at}.license_arn: not a license ARN: {license_arn!r}")
    agreement_id = _opt_str(item, "agreement_id", at, errors)
    if agreement_id is not None and not AGREEMENT_ID.fullmatch(agreement_id):
        errors.append(f"{at}.agreement_id: 1 to 64 of A-Z a-z 0-9 _ / -, not {agreement_id!r}")
    identifier = _opt_str(item, "customer_identifier", at, errors)
    if identifier is not None and not 1 <= len(identifier) <= 255:
        errors.append(f"{at}.customer_identifier: 1 to 255 characters")
    status = item.get("status", "active")
    if status not in ("active", "cancelled"):
        errors.append(f"{at}.status: active or cancelled, not {status!r}")
        status = "active"
    return CatalogSubscription(
        product_code=_str(item, "product_code", at, errors),
        customer_aws_account_id=_account_id(
            item.get("customer_aws_account_id"), f"{at}.customer_aws_account_id", errors
        ),
        customer_identifier=identifier,
        license_arn=license_arn,
        agreement_id=agreement_id,
        status=status,
        entitlements=_entitlements(item, at, errors),
    )


def _entitlements(
    item: Mapping[str, Any], at: str, errors: list[str]
) -> tuple[CatalogEntitlement, ...] | None:
    if "entitlements" not in item:
        return None
    found = []
    for i, entry in enumerate(_list(item, "entitlements", errors, at)):
        place = f"{at}.entitlements[{i}]"
        if not _mapping(entry, place, errors):
            continue
        _no_unknown(entry, place, {"dimension", "value", "type", "expires_at"}, errors)
        dimension = _str(entry, "dimension", place, errors)
        value = entry.get("value")
        type_ = entry.get("type")
        if isinstance(value, bool):
            value, type_ = ("true" if value else "false"), type_ or "boolean"
        elif isinstance(value, int):
            value, type_ = str(value), type_ or "integer"
        elif isinstance(value, float):
            value, type_ = repr(value), type_ or "decimal"
        if not isinstance(value, str):
            errors.append(f"{place}.value: a number, true or false, or text")
            continue
        try:
            kind, text = typed_value(value, type_)
        except CatalogError as exc:
            errors.append(f"{place}.value: {exc}")
            continue
        found.append(
            CatalogEntitlement(dimension, kind, text, _opt_time(entry, "expires_at", place, errors))
        )
    _unique([e.dimension for e in found], f"{at}.entitlements dimension", errors)
    return tuple(found)


def _account_id(value: Any, at: str, errors: list[str]) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # an unquoted YAML number; fine when all 12 digits survived
    if not isinstance(value, str) or not ACCOUNT_ID.fullmatch(value):
        errors.append(f'{at}: an AWS account ID of 12 digits, quoted (e.g. "111122223333")')
        return ""
    return value


def _list(doc: Mapping[str, Any], key: str, errors: list[str], at: str = "") -> list[Any]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(f"{at + '.' if at else ''}{key}: a list")
        return []
    return value


def _mapping(item: Any, at: str, errors: list[str]) -> bool:
    if not isinstance(item, Mapping):
        errors.append(f"{at}: a mapping of fields")
        return False
    return True


def _str(item: Mapping[str, Any], key: str, at: str, errors: list[str]) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        errors.append(f"{at}.{key}: required text")
        return ""
    return value


def _opt_str(item: Mapping[str, Any], key: str, at: str, errors: list[str]) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        errors.append(f"{at}.{key}: text")
        return None
    return value


def _opt_time(item: Mapping[str, Any], key: str, at: str, errors: list[str]) -> datetime | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            value = None
    if not isinstance(value, datetime):
        errors.append(f"{at}.{key}: an ISO 8601 time, e.g. 2026-01-01T00:00:00Z")
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _no_unknown(item: Mapping[str, Any], at: str, known: set[str], errors: list[str]) -> None:
    for key in item:
        if key not in known:
            place = f"{at}." if at else ""
            errors.append(f"{place}{key}: unknown field (known: {', '.join(sorted(known))})")


def _unique(values: list[str], what: str, errors: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value and value in seen:
            errors.append(f"{what} {value!r} appears twice")
        seen.add(value)
