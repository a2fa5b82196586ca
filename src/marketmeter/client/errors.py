"""The errors of both APIs as Python exceptions: one class per error shape of botocore's
models (a test checks that none is missing), all subclasses of `MarketplaceError`. Errors
the models do not list (`ValidationException`, authentication errors, `DryRunOperation`)
are `MarketplaceError` itself, with their code."""

from __future__ import annotations

from typing import Any


class MarketplaceError(Exception):
    """An error answer of AWS Marketplace (or marketmeter): its code, message, request id
    and HTTP status."""

    def __init__(
        self, message: str, *, code: str, request_id: str | None, http_status: int | None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id
        self.http_status = http_status

    @property
    def retryable(self) -> bool:
        """Worth sending again (later): throttling and the service's own faults."""
        return self.code in ("ThrottlingException", "InternalServiceErrorException") or (
            self.http_status is not None and self.http_status >= 500
        )


class CustomerNotEntitledException(MarketplaceError): ...


class DisabledApiException(MarketplaceError): ...


class DuplicateRequestException(MarketplaceError): ...


class ExpiredTokenException(MarketplaceError): ...


class IdempotencyConflictException(MarketplaceError): ...


class InternalServiceErrorException(MarketplaceError): ...


class InvalidCustomerIdentifierException(MarketplaceError): ...


class InvalidEndpointRegionException(MarketplaceError): ...


class InvalidLicenseException(MarketplaceError): ...


class InvalidParameterException(MarketplaceError): ...


class InvalidProductCodeException(MarketplaceError): ...


class InvalidPublicKeyVersionException(MarketplaceError): ...


class InvalidRegionException(MarketplaceError): ...


class InvalidTagException(MarketplaceError): ...


class InvalidTokenException(MarketplaceError): ...


class InvalidUsageAllocationsException(MarketplaceError): ...


class InvalidUsageDimensionException(MarketplaceError): ...


class PlatformNotSupportedException(MarketplaceError): ...


class ThrottlingException(MarketplaceError): ...


class TimestampOutOfBoundsException(MarketplaceError): ...


ERROR_CLASSES: dict[str, type[MarketplaceError]] = {
    cls.__name__: cls for cls in MarketplaceError.__subclasses__()
}


def from_client_error(response: dict[str, Any]) -> MarketplaceError:
    """The exception for a botocore `ClientError`'s response."""
    error = response.get("Error", {})
    meta = response.get("ResponseMetadata", {})
    code = str(error.get("Code", "Unknown"))
    cls = ERROR_CLASSES.get(code, MarketplaceError)
    return cls(
        str(error.get("Message", "")),
        code=code,
        request_id=meta.get("RequestId"),
        http_status=meta.get("HTTPStatusCode"),
    )
