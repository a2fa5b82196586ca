from datetime import timedelta

import jwt
import pytest

from marketmeter.clock import FixedClock
from marketmeter.domain.errors import (
    CustomerNotEntitled,
    InvalidProductCode,
    InvalidPublicKeyVersion,
    InvalidRegion,
    PlatformNotSupported,
)
from marketmeter.domain.service import MeteringService
from tests.conftest import NOW
from tests.factories import AMI, CONTAINER, caller


def claims(service: MeteringService, token: str, version: int = 1) -> dict:  # type: ignore[type-arg]
    key = service.public_key(CONTAINER, version).public_pem
    return jwt.decode(token, key, algorithms=["PS256"])  # type: ignore[no-any-return]


def test_register_usage_returns_a_ps256_jwt_with_the_claims(service: MeteringService) -> None:
    out = service.register_usage(caller("buyer"), CONTAINER, 1, "nonce-123")
    header = jwt.get_unverified_header(out.signature)
    assert header == {"alg": "PS256", "typ": "JWT"}
    assert claims(service, out.signature) == {
        "productCode": CONTAINER,
        "publicKeyVersion": 1,
        "nonce": "nonce-123",
        "iat": int(NOW.timestamp()),
    }
    assert out.public_key_rotation_timestamp is None


def test_the_signature_does_not_verify_with_another_products_key(service: MeteringService) -> None:
    out = service.register_usage(caller("buyer"), CONTAINER, 1, None)
    service.rotate_key(CONTAINER)
    with pytest.raises(jwt.InvalidSignatureError):
        claims(service, out.signature, version=2)


def test_an_unknown_key_version_is_invalid(service: MeteringService) -> None:
    with pytest.raises(InvalidPublicKeyVersion, match="versions 1 to 1"):
        service.register_usage(caller("buyer"), CONTAINER, 2, None)


def test_rotation_adds_a_version_and_marks_the_old_one(
    service: MeteringService, clock: FixedClock
) -> None:
    clock.advance(timedelta(days=1))
    key = service.rotate_key(CONTAINER)
    assert key.version == 2
    old = service.register_usage(caller("buyer"), CONTAINER, 1, None)
    assert old.public_key_rotation_timestamp == NOW + timedelta(days=1)
    new = service.register_usage(caller("buyer"), CONTAINER, 2, None)
    assert new.public_key_rotation_timestamp is None
    assert claims(service, new.signature, version=2)["publicKeyVersion"] == 2


def test_a_non_container_product_is_refused(service: MeteringService) -> None:
    with pytest.raises(InvalidProductCode, match="container"):
        service.register_usage(caller("buyer"), AMI, 1, None)
    with pytest.raises(InvalidProductCode):
        service.register_usage(caller("buyer"), "nope", 1, None)


def test_a_buyer_without_subscription_is_not_entitled(service: MeteringService) -> None:
    with pytest.raises(CustomerNotEntitled):
        service.register_usage(caller("stranger"), CONTAINER, 1, None)


def test_the_seller_registers_in_preview_mode(service: MeteringService) -> None:
    assert service.register_usage(caller("seller"), CONTAINER, 1, None).signature


def test_a_task_in_another_region_is_refused(service: MeteringService) -> None:
    with pytest.raises(InvalidRegion, match="eu-west-1"):
        service.register_usage(
            caller("buyer", signed_in="eu-west-1", region="us-east-1"), CONTAINER, 1, None
        )


@pytest.mark.parametrize("platform", ["ecs", "eks", "fargate", "EKS"])
def test_container_platforms_are_supported(service: MeteringService, platform: str) -> None:
    service.register_usage(caller("buyer", platform=platform), CONTAINER, 1, None)


def test_ec2_is_not_a_supported_platform(service: MeteringService) -> None:
    with pytest.raises(PlatformNotSupported, match="ec2"):
        service.register_usage(caller("buyer", platform="ec2"), CONTAINER, 1, None)
