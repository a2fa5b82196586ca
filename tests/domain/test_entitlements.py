"""Entitlements of contract products: typed values, changes, and GetEntitlements' rules
(filters, pages, expiry, who may ask)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from marketmeter.clock import FixedClock
from marketmeter.domain.catalog_file import parse_catalog
from marketmeter.domain.entitlements import typed_value, wire_value
from marketmeter.domain.errors import CatalogError, InvalidParameter, NotFound
from marketmeter.domain.service import MeteringService
from tests.conftest import NOW
from tests.factories import SAAS, SELLER, caller

CONTRACT = "contract01"
BUYERS = [f"12341234{i:04d}" for i in range(7)]


@pytest.fixture
def contracts(service: MeteringService) -> MeteringService:
    service.apply_catalog(
        parse_catalog(
            {
                "products": [
                    {
                        "product_code": CONTRACT,
                        "seller_account_id": SELLER,
                        "dimensions": ["seats", "tier", "sso", "storage"],
                        "pricing": "contract",
                    }
                ],
                "subscriptions": [
                    {"product_code": CONTRACT, "customer_aws_account_id": b} for b in BUYERS
                ],
            }
        )
    )
    for i, buyer in enumerate(BUYERS):
        service.marketplace.set_entitlement(CONTRACT, buyer, "seats", str(10 + i))
        service.marketplace.set_entitlement(CONTRACT, buyer, "tier", "gold")
    return service


@pytest.mark.parametrize(
    ("text", "type_", "expected"),
    [
        ("25", None, ("integer", "25")),
        ("2.50", None, ("decimal", "2.50")),
        ("TRUE", None, ("boolean", "true")),
        ("gold", None, ("string", "gold")),
        ("25", "string", ("string", "25")),
        ("25", "decimal", ("decimal", "25")),
        ("false", "string", ("string", "false")),
    ],
)
def test_values_read_as_the_narrowest_type(
    text: str, type_: str | None, expected: tuple[str, str]
) -> None:
    assert typed_value(text, type_) == expected


@pytest.mark.parametrize(
    ("text", "type_"), [("gold", "integer"), ("x", "decimal"), ("yes", "boolean"), ("1", "date")]
)
def test_a_value_of_the_wrong_type_is_refused(text: str, type_: str) -> None:
    with pytest.raises(CatalogError):
        typed_value(text, type_)


def test_wire_values_fill_the_one_member_that_fits(contracts: MeteringService) -> None:
    page = contracts.get_entitlements(caller(), CONTRACT, {"DIMENSION": ["seats"]}, 1, None)
    [(_, seats)] = page.found
    assert wire_value(seats) == {"IntegerValue": 10}
    contracts.marketplace.set_entitlement(CONTRACT, BUYERS[0], "sso", "true")
    contracts.marketplace.set_entitlement(CONTRACT, BUYERS[0], "storage", "1.5")
    values = {
        e.dimension: wire_value(e)
        for _, e in contracts.get_entitlements(
            caller(), CONTRACT, {"CUSTOMER_AWS_ACCOUNT_ID": [BUYERS[0]]}, None, None
        ).found
    }
    assert values == {
        "seats": {"IntegerValue": 10},
        "tier": {"StringValue": "gold"},
        "sso": {"BooleanValue": True},
        "storage": {"DoubleValue": 1.5},
    }


def test_pages_walk_every_entitlement_once(contracts: MeteringService) -> None:
    seen, token, pages = [], None, 0
    while True:
        page = contracts.get_entitlements(caller(), CONTRACT, {}, 3, token)
        pages += 1
        seen.extend((s.customer_aws_account_id, e.dimension) for s, e in page.found)
        token = page.next_token
        if token is None:
            break
    assert pages == 5  # 14 entitlements, 3 a page
    assert sorted(seen) == sorted((b, d) for b in BUYERS for d in ("seats", "tier"))


def test_filters_are_ored_within_and_anded_across(contracts: MeteringService) -> None:
    page = contracts.get_entitlements(
        caller(),
        CONTRACT,
        {"CUSTOMER_AWS_ACCOUNT_ID": BUYERS[:2], "DIMENSION": ["seats"]},
        25,
        None,
    )
    assert sorted(s.customer_aws_account_id for s, _ in page.found) == BUYERS[:2]
    assert {e.dimension for _, e in page.found} == {"seats"}


def test_the_customer_filters_exclude_each_other(contracts: MeteringService) -> None:
    with pytest.raises(InvalidParameter, match="cannot be used together"):
        contracts.get_entitlements(
            caller(),
            CONTRACT,
            {"CUSTOMER_AWS_ACCOUNT_ID": [BUYERS[0]], "CUSTOMER_IDENTIFIER": ["x"]},
            None,
            None,
        )


def test_only_the_seller_sees_a_product(contracts: MeteringService) -> None:
    with pytest.raises(InvalidParameter, match=CONTRACT):
        contracts.get_entitlements(caller("other_seller"), CONTRACT, {}, None, None)


def test_a_token_of_another_product_or_garbage_is_refused(contracts: MeteringService) -> None:
    token = contracts.get_entitlements(caller(), CONTRACT, {}, 1, None).next_token
    with pytest.raises(InvalidParameter, match="NextToken"):
        contracts.get_entitlements(caller(), SAAS, {}, 1, token)
    with pytest.raises(InvalidParameter, match="NextToken"):
        contracts.get_entitlements(caller(), CONTRACT, {}, 1, "garbage!")


def test_an_expired_entitlement_is_not_returned(
    contracts: MeteringService, clock: FixedClock
) -> None:
    contracts.marketplace.set_entitlement(
        CONTRACT, BUYERS[0], "sso", "true", expires_at=NOW + timedelta(hours=2)
    )
    query = {"CUSTOMER_AWS_ACCOUNT_ID": [BUYERS[0]], "DIMENSION": ["sso"]}
    assert len(contracts.get_entitlements(caller(), CONTRACT, query, None, None).found) == 1
    clock.advance(timedelta(hours=2))
    assert contracts.get_entitlements(caller(), CONTRACT, query, None, None).found == []


def test_entitlements_belong_to_contract_products_and_their_dimensions(
    contracts: MeteringService,
) -> None:
    with pytest.raises(CatalogError, match="priced by usage"):
        contracts.marketplace.set_entitlement(SAAS, "444455556666", "users", "3")
    with pytest.raises(CatalogError, match="not a dimension"):
        contracts.marketplace.set_entitlement(CONTRACT, BUYERS[0], "colour", "red")
    with pytest.raises(NotFound):
        contracts.marketplace.remove_entitlement(CONTRACT, BUYERS[0], "sso")
    contracts.marketplace.remove_entitlement(CONTRACT, BUYERS[0], "tier")
    left = contracts.get_entitlements(
        caller(), CONTRACT, {"CUSTOMER_AWS_ACCOUNT_ID": [BUYERS[0]]}, None, None
    )
    assert [e.dimension for _, e in left.found] == ["seats"]
