"""RegisterUsage for paid container products: entitlement at start-up and a PS256 JWT
signed with the product's RSA key of the requested version.

Each container product gets an RSA 2048-bit key, version 1, when it is created; `rotate`
adds the next version. A version older than the newest is still served, with
`PublicKeyRotationTimestamp` telling when it was superseded.
"""

from __future__ import annotations

from datetime import datetime

from marketmeter.clock import Clock
from marketmeter.domain.entitlement import entitlement, existing_product
from marketmeter.domain.errors import (
    CatalogError,
    InvalidProductCode,
    InvalidPublicKeyVersion,
    InvalidRegion,
    NotFound,
    PlatformNotSupported,
)
from marketmeter.domain.models import Caller, RegisterUsageOutcome, SigningKey
from marketmeter.domain.ports import Store

SUPPORTED_PLATFORMS = frozenset({"ecs", "eks", "fargate"})
MAX_KEY_VERSION = 2**31 - 1
KEY_BITS = 2048


def new_signing_key(product_code: str, version: int, now: datetime) -> SigningKey:
    # cryptography and PyJWT load on the first key or signature: a server start needs neither.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return SigningKey(product_code, version, private_pem, public_pem, now)


class Containers:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def register_usage(
        self, caller: Caller, product_code: str, key_version: int, nonce: str | None
    ) -> RegisterUsageOutcome:
        now = self._clock.now()
        product = existing_product(self._store, product_code)
        if product.type != "container":
            raise InvalidProductCode(
                f"Product {product_code} is a {product.type.upper()} product: RegisterUsage is "
                "for paid container products."
            )
        region = caller.access_key.region
        if region is not None and region != caller.region:
            raise InvalidRegion(
                f"RegisterUsage must be called in the same AWS Region the ECS task was launched "
                f"in: called in {caller.region}, the task runs in {region}."
            )
        platform = caller.access_key.platform
        if platform is not None and platform.lower() not in SUPPORTED_PLATFORMS:
            raise PlatformNotSupported(
                f"AWS Marketplace does not support metering usage from the underlying platform "
                f"({platform}). Currently, Amazon ECS, Amazon EKS, and AWS Fargate are supported."
            )
        entitlement(self._store, caller, product, now)
        key = (
            self._store.get_signing_key(product_code, key_version)
            if key_version <= MAX_KEY_VERSION
            else None
        )
        if key is None:
            latest = self._store.latest_signing_key_version(product_code)
            raise InvalidPublicKeyVersion(
                f"Public Key version is invalid: {product_code} has key versions 1 to {latest}."
            )
        successor = self._store.get_signing_key(product_code, key_version + 1)
        claims: dict[str, object] = {
            "productCode": product_code,
            "publicKeyVersion": key_version,
            "iat": int(now.timestamp()),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        import jwt

        signature = jwt.encode(claims, key.private_pem, algorithm="PS256", headers={"typ": "JWT"})
        return RegisterUsageOutcome(
            signature=signature,
            public_key_rotation_timestamp=successor.created_at if successor else None,
        )

    def public_key(self, product_code: str, version: int) -> SigningKey:
        key = self._store.get_signing_key(product_code, version)
        if key is None:
            raise NotFound(f"product {product_code} has no signing key version {version}")
        return key

    def rotate(self, product_code: str) -> SigningKey:
        product = self._store.get_product(product_code)
        if product is None:
            raise NotFound(f"no product {product_code}")
        if product.type != "container":
            raise NotFound(f"product {product_code} is not a container product: it has no keys")
        now = self._clock.now()
        latest = self._store.latest_signing_key_version(product_code) or 0
        key = new_signing_key(product_code, latest + 1, now)  # slow: outside the transaction
        with self._store.transaction() as tx:
            if not tx.add_signing_key(key):
                raise CatalogError(
                    f"{product_code}: key version {key.version} was added meanwhile; "
                    "rotate again to add the next one"
                )
        return key
