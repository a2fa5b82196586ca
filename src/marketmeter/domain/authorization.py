"""Who may call what: the IAM-like allow list of an access key, the Regions where the API
is enabled, and the per-account request quotas (throttling)."""

from __future__ import annotations

import threading
from datetime import datetime

from marketmeter.domain.errors import AccessDenied, DisabledApi, Throttled, Unauthorized
from marketmeter.domain.models import Caller

# Requests per second per account and Region (AWS Marketplace Metering Service quotas;
# ResolveCustomer has no published quota and gets the same as BatchMeterUsage).
QUOTAS: dict[str, float] = {
    "BatchMeterUsage": 10.0,
    "MeterUsage": 10.0,
    "RegisterUsage": 5.0,
    "ResolveCustomer": 10.0,
}


MAX_BUCKETS = 10_000


def authorize(caller: Caller, action: str, *, dry_run: bool = False) -> None:
    allowed = caller.access_key.actions
    if allowed is None or action in allowed:
        return
    if dry_run:
        raise Unauthorized(f"You are not authorized to perform aws-marketplace:{action} (DryRun).")
    raise AccessDenied(
        f"User: arn:aws:iam::{caller.account_id}:user/{caller.access_key.access_key_id} "
        f"is not authorized to perform: aws-marketplace:{action}"
    )


def check_api_enabled(caller: Caller, enabled_regions: frozenset[str] | None) -> None:
    if enabled_regions is not None and caller.region not in enabled_regions:
        raise DisabledApi(
            f"The API is disabled in the Region {caller.region}; it is enabled in "
            f"{', '.join(sorted(enabled_regions)) or 'no Region'}."
        )


class RateLimiter:
    """Token buckets per (account, Region, operation), refilled at the operation's quota."""

    def __init__(self, quotas: dict[str, float] | None = None) -> None:
        self._quotas = dict(QUOTAS if quotas is None else quotas)
        self._buckets: dict[tuple[str, str, str], tuple[float, datetime]] = {}
        self._lock = threading.Lock()

    def acquire(self, caller: Caller, operation: str, now: datetime) -> None:
        rate = self._quotas.get(operation)
        if rate is None:
            return
        key = (caller.account_id, caller.region, operation)
        with self._lock:
            if len(self._buckets) > MAX_BUCKETS:  # full buckets are the same as no bucket
                self._buckets = {
                    k: (t, at)
                    for k, (t, at) in self._buckets.items()
                    if (now - at).total_seconds() < 1
                }
            tokens, last = self._buckets.get(key, (rate, now))
            elapsed = max((now - last).total_seconds(), 0.0)
            tokens = min(rate, tokens + elapsed * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise Throttled(
                    f"The calls to the API are throttled: {operation} is limited to "
                    f"{rate:g} requests per second per account and Region."
                )
            self._buckets[key] = (tokens - 1.0, now)
