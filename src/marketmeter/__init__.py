"""marketmeter — the AWS Marketplace Metering Service, self-hosted."""

__version__ = "0.1.0"
