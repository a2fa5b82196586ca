"""Domain errors. Each carries a message for the caller; the protocol layer maps each class
to its AWS `__type` and HTTP status in one table (`marketmeter.protocol.errors`)."""

from __future__ import annotations


class MeteringError(Exception):
    """Base of every error the domain reports to a caller."""

    default_message = "The request could not be processed."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class ValidationFailed(MeteringError):
    """Input that breaks a rule of the request's shape. Carries every violation."""

    def __init__(self, violations: list[str]) -> None:
        self.violations = list(violations)
        n = len(self.violations)
        noun = "error" if n == 1 else "errors"
        super().__init__(f"{n} validation {noun} detected: " + "; ".join(self.violations))


class InvalidProductCode(MeteringError):
    default_message = (
        "The product code passed does not match the product code used for publishing the product."
    )


class InvalidUsageDimension(MeteringError):
    default_message = (
        "The usage dimension does not match one of the UsageDimensions associated with products."
    )


class InvalidTag(MeteringError):
    default_message = "The tag is invalid, or the number of tags is greater than 5."


class InvalidUsageAllocations(MeteringError):
    default_message = "Sum of allocated usage quantities is not equal to the usage quantity."


class TimestampOutOfBounds(MeteringError):
    default_message = "The timestamp value passed in the UsageRecord is out of allowed range."


class InvalidEndpointRegion(MeteringError):
    default_message = "The endpoint being called is in a Region different from your resource."


class DuplicateRequest(MeteringError):
    default_message = (
        "A metering record has already been emitted by the same resource for the same "
        "dimension and hour with a different quantity."
    )


class IdempotencyConflict(MeteringError):
    default_message = "The ClientToken is being used for multiple requests."


class CustomerNotEntitled(MeteringError):
    default_message = (
        "Exception thrown when the customer does not have a valid subscription for the product."
    )


class InvalidCustomerIdentifier(MeteringError):
    default_message = "You have metered usage for a CustomerIdentifier that does not exist."


class InvalidLicense(MeteringError):
    default_message = (
        "Ensure the LicenseArn is valid, matches the customer, and usage is within the "
        "license activation period."
    )


class InvalidRegistrationToken(MeteringError):
    default_message = "Registration token is invalid."


class ExpiredRegistrationToken(MeteringError):
    default_message = "The submitted registration token has expired."


class InvalidRegion(MeteringError):
    default_message = (
        "RegisterUsage must be called in the same AWS Region the ECS task was launched in."
    )


class InvalidPublicKeyVersion(MeteringError):
    default_message = "Public Key version is invalid."


class PlatformNotSupported(MeteringError):
    default_message = (
        "AWS Marketplace does not support metering usage from the underlying platform. "
        "Currently, Amazon ECS, Amazon EKS, and AWS Fargate are supported."
    )


class DisabledApi(MeteringError):
    default_message = "The API is disabled in the Region."


class Throttled(MeteringError):
    default_message = "The calls to the API are throttled."


class InternalServiceError(MeteringError):
    default_message = "An internal error has occurred. Retry your request."


class AccessDenied(MeteringError):
    default_message = "You are not authorized to perform this operation."


class Unauthorized(MeteringError):
    """DryRun of a request the caller is not allowed to make."""

    default_message = "You are not authorized to perform this operation."


class DryRunSucceeded(MeteringError):
    """DryRun of a request that would have succeeded. Nothing was stored."""

    default_message = "Request would have succeeded, but DryRun flag is set."


class InvalidParameter(MeteringError):
    """GetEntitlements: a parameter the Entitlement Service refuses."""


class CatalogError(MeteringError):
    """A catalog file or administrative command that cannot be applied."""


class Conflict(CatalogError):
    """An administrative change that clashes with what exists (a webhook added twice)."""


class NotFound(MeteringError):
    """An administrative lookup (product, subscription, key) that found nothing."""
