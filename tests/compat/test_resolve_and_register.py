"""ResolveCustomer (seller) and RegisterUsage (buyer) against a real server process."""

from __future__ import annotations

import time

import pytest

from tests.compat.conftest import Fresh
from tests.compat.server import Server, expect_error, issue_token, verified_claims
from tests.factories import AMI, BUYER, BUYER_CONCURRENT_LICENSE_B, CONTAINER, SAAS, SAAS_CONCURRENT

pytestmark = pytest.mark.compat


class TestResolveCustomer:
    def test_resolves_a_token_to_the_subscription(self, server: Server, fresh: Fresh) -> None:
        account, identifier = fresh.customer()
        out = server.client().resolve_customer(RegistrationToken=issue_token(server, account))
        assert out["CustomerIdentifier"] == identifier
        assert out["CustomerAWSAccountId"] == account
        assert out["ProductCode"] == SAAS
        assert out["LicenseArn"].startswith(f"arn:aws:license-manager::{account}:license:l-")
        assert out["Metadata"]["AgreementId"].startswith("agmt-")

    def test_resolving_twice_gives_the_same_answer(self, server: Server, fresh: Fresh) -> None:
        token = issue_token(server, fresh.customer()[0])
        first = server.client().resolve_customer(RegistrationToken=token)
        again = server.client().resolve_customer(RegistrationToken=token)
        first.pop("ResponseMetadata")
        again.pop("ResponseMetadata")
        assert first == again

    def test_concurrent_agreement_products_omit_the_customer_identifier(
        self, server: Server
    ) -> None:
        out = server.client().resolve_customer(
            RegistrationToken=issue_token(server, BUYER, SAAS_CONCURRENT)
        )
        assert "CustomerIdentifier" not in out
        assert out["LicenseArn"] == BUYER_CONCURRENT_LICENSE_B
        assert out["Metadata"] == {"AgreementId": "agmt-concurrent-b"}

    def test_garbage_is_an_invalid_token(self, server: Server) -> None:
        expect_error(
            server,
            "InvalidTokenException",
            400,
            server.client().resolve_customer,
            RegistrationToken="garbage",
        )

    def test_another_sellers_token_is_invalid(self, server: Server, fresh: Fresh) -> None:
        token = issue_token(server, fresh.customer()[0])
        expect_error(
            server,
            "InvalidTokenException",
            400,
            server.client("other_seller").resolve_customer,
            RegistrationToken=token,
        )

    def test_an_expired_token(self, server: Server, fresh: Fresh) -> None:
        token = issue_token(server, fresh.customer()[0], SAAS, "--expires-in", "1")
        time.sleep(1.1)
        response = expect_error(
            server,
            "ExpiredTokenException",
            400,
            server.client().resolve_customer,
            RegistrationToken=token,
        )
        assert response["Error"]["Message"] == "The submitted registration token has expired."

    def test_an_empty_token_is_a_validation_exception(self, server: Server) -> None:
        expect_error(
            server,
            "ValidationException",
            400,
            server.client().resolve_customer,
            RegistrationToken="",
        )

    def test_disabled_api(self, server: Server) -> None:
        expect_error(
            server,
            "DisabledApiException",
            400,
            server.client(region="ap-south-1").resolve_customer,
            RegistrationToken="x",
        )


class TestRegisterUsage:
    def test_returns_a_jwt_signed_with_the_products_key(self, server: Server) -> None:
        out = server.client("buyer").register_usage(
            ProductCode=CONTAINER, PublicKeyVersion=1, Nonce="abc-123"
        )
        assert "PublicKeyRotationTimestamp" not in out
        claims = verified_claims(server, out["Signature"], CONTAINER)
        assert claims["productCode"] == CONTAINER
        assert claims["publicKeyVersion"] == 1
        assert claims["nonce"] == "abc-123"
        assert abs(claims["iat"] - time.time()) < 60

    def test_invalid_public_key_version(self, server: Server) -> None:
        expect_error(
            server,
            "InvalidPublicKeyVersionException",
            400,
            server.client("buyer").register_usage,
            ProductCode=CONTAINER,
            PublicKeyVersion=99,
        )

    def test_invalid_product_code(self, server: Server) -> None:
        for product in ("unknownproduct", AMI):
            expect_error(
                server,
                "InvalidProductCodeException",
                400,
                server.client("buyer").register_usage,
                ProductCode=product,
                PublicKeyVersion=1,
            )

    def test_customer_not_entitled(self, server: Server) -> None:
        expect_error(
            server,
            "CustomerNotEntitledException",
            400,
            server.client("stranger").register_usage,
            ProductCode=CONTAINER,
            PublicKeyVersion=1,
        )

    def test_invalid_region(self, server: Server) -> None:
        expect_error(
            server,
            "InvalidRegionException",
            400,
            server.client("pinned", region="us-west-2").register_usage,
            ProductCode=CONTAINER,
            PublicKeyVersion=1,
        )

    def test_platform_not_supported(self, server: Server) -> None:
        expect_error(
            server,
            "PlatformNotSupportedException",
            400,
            server.client("ec2").register_usage,
            ProductCode=CONTAINER,
            PublicKeyVersion=1,
        )

    def test_disabled_api(self, server: Server) -> None:
        expect_error(
            server,
            "DisabledApiException",
            400,
            server.client("buyer", region="ap-south-1").register_usage,
            ProductCode=CONTAINER,
            PublicKeyVersion=1,
        )

    def test_a_long_nonce_is_a_validation_exception(self, server: Server) -> None:
        expect_error(
            server,
            "ValidationException",
            400,
            server.client("buyer").register_usage,
            ProductCode=CONTAINER,
            PublicKeyVersion=1,
            Nonce="n" * 256,
        )
