import pytest

from marketmeter.domain.catalog_file import parse_catalog
from marketmeter.domain.errors import CatalogError, NotFound
from marketmeter.domain.service import MeteringService
from marketmeter.store.sqlite import SqliteStore
from tests.factories import AMI, BUYER, BUYER2, CONTAINER, SAAS, SELLER, make_catalog


def test_applying_the_same_catalog_twice_changes_nothing(
    service: MeteringService, store: SqliteStore
) -> None:
    before = store.find_subscriptions(AMI, customer_aws_account_id=BUYER)
    key_before = store.get_signing_key(CONTAINER, 1)
    service.apply_catalog(parse_catalog(make_catalog()))
    assert store.find_subscriptions(AMI, customer_aws_account_id=BUYER) == before
    assert store.get_signing_key(CONTAINER, 1) == key_before
    assert store.latest_signing_key_version(CONTAINER) == 1


def test_generated_ids_follow_aws_formats(store: SqliteStore, service: MeteringService) -> None:
    [sub] = store.find_subscriptions(AMI, customer_aws_account_id=BUYER)
    assert sub.license_arn.startswith(f"arn:aws:license-manager::{BUYER}:license:l-")
    assert sub.agreement_id.startswith("agmt-")


def test_a_buyer_keeps_one_customer_identifier_across_products(
    store: SqliteStore, service: MeteringService
) -> None:
    [saas] = store.find_subscriptions(SAAS, customer_aws_account_id=BUYER)
    [ami] = store.find_subscriptions(AMI, customer_aws_account_id=BUYER)
    assert ami.customer_identifier == saas.customer_identifier


def test_status_cancelled_ends_a_subscription_and_active_restores_it(
    store: SqliteStore, service: MeteringService
) -> None:
    catalog = make_catalog()
    catalog["subscriptions"][1]["status"] = "cancelled"
    service.apply_catalog(parse_catalog(catalog))
    [sub] = store.find_subscriptions(SAAS, customer_aws_account_id=BUYER2)
    assert sub.ends_at is not None
    service.apply_catalog(parse_catalog(make_catalog()))
    [sub] = store.find_subscriptions(SAAS, customer_aws_account_id=BUYER2)
    assert sub.ends_at is None


def test_errors_name_their_place_and_all_are_reported() -> None:
    catalog = make_catalog()
    catalog["accounts"][0]["account_id"] = "123"
    catalog["products"][1]["type"] = "desktop"
    catalog["products"][2]["dimensions"] = []
    catalog["subscriptions"][0]["status"] = "paused"
    catalog["subscriptions"][0]["colour"] = "red"
    with pytest.raises(CatalogError) as raised:
        parse_catalog(catalog)
    text = str(raised.value)
    for expected in (
        "accounts[0].account_id: an AWS account ID of 12 digits",
        "products[1].type: one of saas, ami, container",
        "products[2].dimensions: a non-empty list",
        "subscriptions[0].status: active or cancelled",
        "subscriptions[0].colour: unknown field",
    ):
        assert expected in text


def test_an_unquoted_account_id_with_twelve_digits_is_accepted() -> None:
    catalog = make_catalog()
    catalog["accounts"][0]["account_id"] = int(SELLER)
    assert parse_catalog(catalog).accounts[0].account_id == SELLER


def test_duplicates_are_reported() -> None:
    catalog = make_catalog()
    catalog["products"].append(dict(catalog["products"][0]))
    with pytest.raises(CatalogError, match="appears twice"):
        parse_catalog(catalog)


def test_a_product_of_an_unknown_seller_is_refused(service: MeteringService) -> None:
    with pytest.raises(CatalogError, match="not in the catalog"):
        service.apply_catalog(
            parse_catalog(
                {
                    "products": [
                        {
                            "product_code": "p1",
                            "seller_account_id": "000000000000",
                            "dimensions": ["d"],
                        }
                    ]
                }
            )
        )


def test_a_subscription_to_an_unknown_product_changes_nothing(
    store: SqliteStore, service: MeteringService
) -> None:
    catalog = {
        "accounts": [{"account_id": "123412341234"}],
        "subscriptions": [{"product_code": "missing", "customer_aws_account_id": BUYER}],
    }
    with pytest.raises(CatalogError, match="unknown product"):
        service.apply_catalog(parse_catalog(catalog))
    assert store.get_account("123412341234") is None  # the whole file was rolled back


def test_cancel_subscription_of_unknown_things_is_not_found(service: MeteringService) -> None:
    with pytest.raises(NotFound):
        service.cancel_subscription("nope", BUYER)
    with pytest.raises(NotFound):
        service.cancel_subscription(SAAS, "000000000000")


def test_a_customer_identifier_belongs_to_one_account_per_product(service: MeteringService) -> None:
    catalog = make_catalog()
    catalog["subscriptions"][1]["customer_identifier"] = catalog["subscriptions"][0][
        "customer_identifier"
    ]
    with pytest.raises(CatalogError, match="cannot also be account"):
        service.apply_catalog(parse_catalog(catalog))
