"""The AWS clients of the app, made in one place. Every function that uses one can be
given another (tests do), so nothing here is called at import time."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import boto3

DEFAULT_REGION = "us-east-1"

ClientFactory = Callable[[], Any]
"""Makes a boto3 client or resource."""


def region() -> str:
    return os.environ.get("AWS_REGION") or DEFAULT_REGION


def metering_client() -> Any:
    """AWS Marketplace Metering Service (ResolveCustomer, BatchMeterUsage)."""
    return boto3.client("meteringmarketplace", region_name=region())


def dynamodb_resource() -> Any:
    return boto3.resource("dynamodb", region_name=region())
