"""Checking RegisterUsage's answer in a container product: the `Signature` is a PS256 JWT
signed with the product's key (version `publicKeyVersion`); its claims name the product,
the nonce the container sent, and when it was issued (`iat`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt


class RegistrationSignatureError(ValueError):
    """RegisterUsage's signature does not prove what it should."""


class BadSignature(RegistrationSignatureError): ...


class WrongProduct(RegistrationSignatureError): ...


class WrongNonce(RegistrationSignatureError): ...


class ExpiredSignature(RegistrationSignatureError): ...


def verify_registration_signature(
    token: str,
    public_key_pem: str | bytes,
    *,
    product_code: str,
    nonce: str | None,
    max_age: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> dict[str, Any]:
    """The signature's claims, once the signature verifies with the key, names the
    product and the nonce, and is at most `max_age` old. Each failure its own error."""
    try:
        claims: dict[str, Any] = jwt.decode(token, public_key_pem, algorithms=["PS256"])
    except jwt.PyJWTError as exc:
        raise BadSignature(f"the signature does not verify with this key: {exc}") from None
    if claims.get("productCode") != product_code:
        raise WrongProduct(
            f"the signature is for product {claims.get('productCode')!r}, not {product_code!r}"
        )
    if nonce is not None and claims.get("nonce") != nonce:
        raise WrongNonce("the signature carries another nonce than the one sent")
    issued = claims.get("iat")
    if not isinstance(issued, int | float):
        raise BadSignature("the signature has no issue time (iat)")
    age = (now or datetime.now(UTC)) - datetime.fromtimestamp(issued, UTC)
    if age > max_age:
        raise ExpiredSignature(f"the signature was issued {age} ago (at most {max_age})")
    return claims
