"""Who may use a product: the product must exist, and the caller's account must hold an
active subscription to it — or be the product's seller (AWS's preview mode)."""

from __future__ import annotations

from datetime import datetime

from marketmeter.domain.errors import CustomerNotEntitled, InvalidProductCode
from marketmeter.domain.models import Caller, Product, Subscription
from marketmeter.domain.ports import Reader


def existing_product(reader: Reader, product_code: str) -> Product:
    product = reader.get_product(product_code)
    if product is None:
        raise InvalidProductCode(
            "The product code passed does not match the product code used for publishing "
            f"the product: no product {product_code}."
        )
    return product


def entitlement(
    reader: Reader, caller: Caller, product: Product, now: datetime
) -> Subscription | None:
    """The caller's active subscription; None in preview mode (the seller's own account)."""
    if caller.account_id == product.seller_account_id:
        return None
    for subscription in reader.find_subscriptions(
        product.product_code, customer_aws_account_id=caller.account_id
    ):
        if subscription.is_active(now):
            return subscription
    raise CustomerNotEntitled(
        f"Exception thrown when the customer does not have a valid subscription for the "
        f"product: account {caller.account_id} has no active subscription to "
        f"{product.product_code}."
    )
