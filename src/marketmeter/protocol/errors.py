"""Every error the service can answer, as AWS names it, with its HTTP status.

One table maps each domain error class to its `__type` and status; wire-level problems
(unreadable JSON, unknown operation, oversized body, authentication) are `ProtocolError`s.
Every error body is `{"__type": …, "message": …}` and the response also carries
`X-Amzn-ErrorType` (DESIGN §5.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from marketmeter.domain import errors as domain

ERROR_TYPES: dict[type[domain.MeteringError], tuple[str, int]] = {
    domain.ValidationFailed: ("ValidationException", 400),
    domain.InvalidProductCode: ("InvalidProductCodeException", 400),
    domain.InvalidUsageDimension: ("InvalidUsageDimensionException", 400),
    domain.InvalidTag: ("InvalidTagException", 400),
    domain.InvalidUsageAllocations: ("InvalidUsageAllocationsException", 400),
    domain.TimestampOutOfBounds: ("TimestampOutOfBoundsException", 400),
    domain.InvalidEndpointRegion: ("InvalidEndpointRegionException", 400),
    domain.DuplicateRequest: ("DuplicateRequestException", 400),
    # @httpError(409) in the service's Smithy model (botocore's JSON model drops it).
    domain.IdempotencyConflict: ("IdempotencyConflictException", 409),
    domain.CustomerNotEntitled: ("CustomerNotEntitledException", 400),
    domain.InvalidCustomerIdentifier: ("InvalidCustomerIdentifierException", 400),
    domain.InvalidLicense: ("InvalidLicenseException", 400),
    domain.InvalidRegistrationToken: ("InvalidTokenException", 400),
    domain.ExpiredRegistrationToken: ("ExpiredTokenException", 400),
    domain.InvalidRegion: ("InvalidRegionException", 400),
    domain.InvalidPublicKeyVersion: ("InvalidPublicKeyVersionException", 400),
    domain.PlatformNotSupported: ("PlatformNotSupportedException", 400),
    domain.DisabledApi: ("DisabledApiException", 400),
    domain.Throttled: ("ThrottlingException", 400),
    domain.InternalServiceError: ("InternalServiceErrorException", 500),
    domain.AccessDenied: ("AccessDeniedException", 400),
    domain.Unauthorized: ("UnauthorizedException", 400),
    domain.DryRunSucceeded: ("DryRunOperation", 412),
    domain.InvalidParameter: ("InvalidParameterException", 400),
    # Administrative errors never reach the AWS endpoint; mapped for completeness.
    domain.CatalogError: ("ValidationException", 400),
    domain.NotFound: ("ResourceNotFoundException", 400),
}


@dataclass(frozen=True, slots=True)
class WireError:
    aws_type: str
    status: int
    message: str


class ProtocolError(Exception):
    """A problem with the request itself, before the domain sees it."""

    def __init__(self, aws_type: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.aws_type = aws_type
        self.message = message
        self.status = status


def serialization_error(message: str) -> ProtocolError:
    return ProtocolError("SerializationException", message)


def unknown_operation(target: str | None) -> ProtocolError:
    return ProtocolError(
        "UnknownOperationException",
        f"Unknown operation {target!r}." if target else "Missing X-Amz-Target header.",
    )


def entity_too_large(limit: int) -> ProtocolError:
    return ProtocolError(
        "RequestEntityTooLargeException",
        f"Request body exceeds the maximum size of {limit} bytes.",
        status=413,
    )


INTERNAL_ERROR = WireError(
    "InternalServiceErrorException", 500, domain.InternalServiceError.default_message
)


def wire_error(exc: domain.MeteringError) -> WireError:
    for cls in type(exc).__mro__:
        found = ERROR_TYPES.get(cls)
        if found is not None:
            return WireError(found[0], found[1], exc.message)
    return WireError(INTERNAL_ERROR.aws_type, 500, exc.message)
