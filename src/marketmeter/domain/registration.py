"""SaaS registration: opaque registration tokens, issued for a subscription, resolved by
the product's seller (ResolveCustomer) until they expire (4 hours by default)."""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

from marketmeter.clock import Clock
from marketmeter.domain.errors import (
    CatalogError,
    ExpiredRegistrationToken,
    InvalidRegistrationToken,
    NotFound,
)
from marketmeter.domain.models import Caller, RegistrationToken, ResolvedCustomer
from marketmeter.domain.ports import Store

DEFAULT_TOKEN_TTL = timedelta(hours=4)
_TOKEN_BYTES = 132  # 176 base64 characters, like the tokens AWS posts to fulfillment URLs


MAX_TOKEN_TTL = timedelta(days=3650)


class Registration:
    def __init__(self, store: Store, clock: Clock, token_ttl: timedelta = DEFAULT_TOKEN_TTL):
        self._store = store
        self._clock = clock
        self._token_ttl = token_ttl

    def issue_token(
        self, product_code: str, customer_aws_account_id: str, expires_in: timedelta | None = None
    ) -> RegistrationToken:
        if expires_in is not None and not timedelta(0) < expires_in <= MAX_TOKEN_TTL:
            raise CatalogError(
                f"a registration token expires in 1 second to {MAX_TOKEN_TTL.days} days"
            )
        if self._store.get_product(product_code) is None:
            raise NotFound(f"no product {product_code}")
        subscriptions = self._store.find_subscriptions(
            product_code, customer_aws_account_id=customer_aws_account_id
        )
        if not subscriptions:
            raise CatalogError(
                f"account {customer_aws_account_id} has no subscription to {product_code}: "
                "add one to the catalog first"
            )
        now = self._clock.now()
        active = [s for s in subscriptions if s.is_active(now)]
        subscription = (active or subscriptions)[-1]
        ttl = self._token_ttl if expires_in is None else expires_in
        if ttl <= timedelta(0):
            raise CatalogError("a registration token must live a positive number of seconds")
        token = RegistrationToken(
            token=base64.b64encode(secrets.token_bytes(_TOKEN_BYTES)).decode(),
            product_code=product_code,
            customer_aws_account_id=customer_aws_account_id,
            license_arn=subscription.license_arn,
            issued_at=now,
            expires_at=now + ttl,
        )
        with self._store.transaction() as tx:
            tx.insert_registration_token(token)
        return token

    def resolve(self, caller: Caller, token_text: str) -> ResolvedCustomer:
        token = self._store.get_registration_token(token_text)
        product = None if token is None else self._store.get_product(token.product_code)
        if token is None or product is None or product.seller_account_id != caller.account_id:
            # Another seller's token is indistinguishable from garbage, as on AWS.
            raise InvalidRegistrationToken()
        if self._clock.now() >= token.expires_at:
            raise ExpiredRegistrationToken()
        subscription = self._store.get_subscription_by_license(token.license_arn)
        if subscription is None:
            raise InvalidRegistrationToken()
        return ResolvedCustomer(
            product_code=product.product_code,
            customer_aws_account_id=subscription.customer_aws_account_id,
            license_arn=subscription.license_arn,
            agreement_id=subscription.agreement_id,
            customer_identifier=(
                None if product.concurrent_agreements else subscription.customer_identifier
            ),
        )
