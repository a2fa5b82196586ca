from datetime import timedelta

import pytest

from marketmeter.clock import FixedClock
from marketmeter.domain.errors import (
    CatalogError,
    ExpiredRegistrationToken,
    InvalidRegistrationToken,
    NotFound,
)
from marketmeter.domain.service import MeteringService
from tests.factories import (
    BUYER,
    BUYER_CONCURRENT_LICENSE_B,
    BUYER_IDENTIFIER,
    BUYER_LICENSE,
    SAAS,
    SAAS_CONCURRENT,
    STRANGER,
    caller,
)


def test_the_seller_resolves_a_token_to_the_customer(service: MeteringService) -> None:
    token = service.issue_registration_token(SAAS, BUYER)
    resolved = service.resolve_customer(caller("seller"), token.token)
    assert resolved.product_code == SAAS
    assert resolved.customer_aws_account_id == BUYER
    assert resolved.customer_identifier == BUYER_IDENTIFIER
    assert resolved.license_arn == BUYER_LICENSE
    assert resolved.agreement_id == "agmt-buyer-saas"


def test_tokens_are_opaque_base64_like_aws(service: MeteringService) -> None:
    token = service.issue_registration_token(SAAS, BUYER).token
    assert len(token) == 176
    assert BUYER not in token and SAAS not in token


def test_resolving_again_gives_the_same_answer(service: MeteringService) -> None:
    token = service.issue_registration_token(SAAS, BUYER).token
    assert service.resolve_customer(caller("seller"), token) == service.resolve_customer(
        caller("seller"), token
    )


def test_another_sellers_token_is_invalid(service: MeteringService) -> None:
    token = service.issue_registration_token(SAAS, BUYER).token
    with pytest.raises(InvalidRegistrationToken):
        service.resolve_customer(caller("other_seller"), token)


def test_a_buyer_cannot_resolve(service: MeteringService) -> None:
    token = service.issue_registration_token(SAAS, BUYER).token
    with pytest.raises(InvalidRegistrationToken):
        service.resolve_customer(caller("buyer"), token)


def test_garbage_is_invalid(service: MeteringService) -> None:
    with pytest.raises(InvalidRegistrationToken, match="invalid"):
        service.resolve_customer(caller("seller"), "not-a-token")


def test_a_token_expires_after_four_hours(service: MeteringService, clock: FixedClock) -> None:
    token = service.issue_registration_token(SAAS, BUYER).token
    clock.advance(timedelta(hours=4) - timedelta(milliseconds=1))
    service.resolve_customer(caller("seller"), token)
    clock.advance(timedelta(milliseconds=1))
    with pytest.raises(ExpiredRegistrationToken, match="expired"):
        service.resolve_customer(caller("seller"), token)


def test_a_token_can_be_issued_with_another_lifetime(
    service: MeteringService, clock: FixedClock
) -> None:
    token = service.issue_registration_token(SAAS, BUYER, timedelta(seconds=30)).token
    clock.advance(timedelta(seconds=30))
    with pytest.raises(ExpiredRegistrationToken):
        service.resolve_customer(caller("seller"), token)


def test_concurrent_agreement_products_leave_out_the_customer_identifier(
    service: MeteringService,
) -> None:
    token = service.issue_registration_token(SAAS_CONCURRENT, BUYER).token
    resolved = service.resolve_customer(caller("seller"), token)
    assert resolved.customer_identifier is None
    # The token stands for the buyer's newest agreement.
    assert resolved.license_arn == BUYER_CONCURRENT_LICENSE_B
    assert resolved.agreement_id == "agmt-concurrent-b"


def test_a_token_for_an_account_without_subscription_is_refused(service: MeteringService) -> None:
    with pytest.raises(CatalogError, match="no subscription"):
        service.issue_registration_token(SAAS, STRANGER)
    with pytest.raises(NotFound):
        service.issue_registration_token("no-such-product", BUYER)
