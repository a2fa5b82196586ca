"""`UsageMeter`: record usage as it happens; the agent sums it per customer, dimension,
tag set and hour of use, keeps it in a durable outbox, and sends each hour once it has
closed — against AWS or marketmeter alike.

`record()` only adds to a dictionary in memory, under a lock: cheap, from any thread. A
thread writes what was added to the outbox every second (a `kill -9` loses at most that
second, and never counts anything twice: memory is emptied only by the transaction that
stores it); another sends closed hours (`sender`). Several processes may share one outbox
file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from marketmeter.agent.outbox import Outbox, UsageKey
from marketmeter.agent.rules import (
    MAX_ALLOCATIONS,
    MAX_DISTINCT_KEYS,
    MICROS,
    Tags,
    checked_tags,
    hour_of,
    to_micros,
)
from marketmeter.agent.sender import Outcome, Sender
from marketmeter.client import MarketplaceMetering

log = logging.getLogger("marketmeter.agent")
_Key = tuple[str, str, str, str, Tags, int]  # kind, customer, license, dimension, tags, hour


class UsageMeter:
    def __init__(
        self,
        product_code: str,
        outbox: str | Path,
        *,
        client: MarketplaceMetering | None = None,
        mode: Literal["batch", "resource"] = "batch",
        dimensions: Collection[str] | None = None,
        settle: timedelta = timedelta(minutes=1),
        sync_every: float = 1.0,
        send_every: float = 5.0,
        clock: Callable[[], datetime] | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        background: bool = True,
        **client_options: Any,
    ) -> None:
        """`client`, or boto3's keywords for one (`endpoint_url=`, `region_name=`,
        `aws_access_key_id=`, …; the default credential chain without keys). `mode`
        "resource": one MeterUsage per dimension-hour, for AMI and container products.
        `dimensions`: the product's, to refuse others at `record()`. `settle`: how long
        after an hour closes it is sent (late usage of the hour still joins it)."""
        if mode not in ("batch", "resource"):
            raise ValueError(f"mode is batch or resource, not {mode!r}")
        self.product_code = product_code
        self.mode = mode
        self._dimensions = None if dimensions is None else frozenset(dimensions)
        self._settle = settle
        self._clock = clock or (lambda: datetime.now(UTC))
        self._now: Callable[[], float] = (
            time.time if clock is None else lambda: self._clock().timestamp()
        )
        self._outbox = Outbox(outbox)
        self._own_client = client is None
        self._client = client or MarketplaceMetering(**client_options)
        self._sender = Sender(
            self._client,
            self._outbox,
            product_code=product_code,
            mode=mode,
            clock=self._clock,
            on_outcome=on_outcome,
        )
        self._pending: dict[_Key, list[Any]] = {}
        self._lock = threading.Lock()
        self._tags: dict[tuple[tuple[str, str], ...], Tags] = {}
        self._alive: set[tuple[str, str, str, str]] = set()
        self._allocated: dict[tuple[str, str, str, str, int], tuple[set[str], set[Tags]]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        if background:
            for target, every in ((self._sync_loop, sync_every), (self._send_loop, send_every)):
                thread = threading.Thread(target=target, args=(every,), daemon=True)
                thread.start()
                self._threads.append(thread)

    # -- recording ---------------------------------------------------------------------

    def record(
        self,
        customer: str | None = None,
        dimension: str = "",
        quantity: int | Decimal | float = 1,
        *,
        tags: Mapping[str, str] | None = None,
        at: datetime | None = None,
        customer_account: str | None = None,
        license_arn: str | None = None,
    ) -> None:
        """Add `quantity` of `dimension` used by `customer` (a CustomerIdentifier), or by
        `customer_account` (an AWS account ID, with `license_arn` for concurrent
        agreements), at `at` (default now). A mistake is a ValueError; nothing is kept."""
        if self._dimensions is not None and dimension not in self._dimensions:
            raise ValueError(
                f"{dimension!r} is not a dimension of {self.product_code} "
                f"({', '.join(sorted(self._dimensions))})"
            )
        if not dimension:
            raise ValueError("a dimension is required")
        if type(quantity) is int and quantity >= 0:
            micros, fractional = quantity * MICROS, False
        else:
            micros, fractional = to_micros(quantity)
        hour = hour_of(at) if at is not None else int(self._now()) // 3600 * 3600
        kind, who = self._customer(customer, customer_account, license_arn)
        tag_set = self._tag_key(tags)
        key: _Key = (kind, who, license_arn or "", dimension, tag_set, hour)
        with self._lock:
            if tag_set:
                self._check_allocations(key)
            entry = self._pending.get(key)
            if entry is None:
                self._pending[key] = [micros, fractional]
            else:
                entry[0] += micros
                entry[1] = entry[1] or fractional

    def _check_allocations(self, key: _Key) -> None:
        """AWS's limits on one record's allocations — at most 5 distinct tag keys and 2,500
        tag sets per customer, dimension and hour — for what this process recorded (the
        sender checks again what several processes recorded together)."""
        group = key[:4] + key[5:]
        seen = self._allocated.get(group)
        if seen is None:
            seen = self._allocated[group] = (set(), set())
        keys, tag_sets = seen
        tag_set = key[4]
        if tag_set in tag_sets:
            return
        more = keys.union(k for k, _ in tag_set)
        if len(more) > MAX_DISTINCT_KEYS:
            raise ValueError(
                f"at most {MAX_DISTINCT_KEYS} distinct tag keys in one hour of {key[3]!r} "
                f"for one customer: {', '.join(sorted(more))}"
            )
        if len(tag_sets) >= MAX_ALLOCATIONS:
            raise ValueError(
                f"at most {MAX_ALLOCATIONS} tag sets in one hour of {key[3]!r} for one customer"
            )
        keys.update(more)
        tag_sets.add(tag_set)

    def keep_alive(
        self,
        customer: str | None = None,
        dimensions: Collection[str] = (),
        *,
        customer_account: str | None = None,
        license_arn: str | None = None,
    ) -> None:
        """Heartbeats: from now on, every hour in which the customer uses none of
        `dimensions` is sent as a zero-quantity record of each (some sellers' contracts
        want a record every hour)."""
        kind, who = self._customer(customer, customer_account, license_arn)
        for dimension in dimensions:
            if self._dimensions is not None and dimension not in self._dimensions:
                raise ValueError(f"{dimension!r} is not a dimension of {self.product_code}")
            self._alive.add((kind, who, license_arn or "", dimension))

    def _customer(
        self, customer: str | None, account: str | None, license_arn: str | None
    ) -> tuple[str, str]:
        if self.mode == "resource":
            if customer is not None or account is not None or license_arn is not None:
                raise ValueError("in resource mode the caller's credentials name the customer")
            return "resource", ""
        if customer is not None:
            if account is not None or license_arn is not None:
                raise ValueError("name a customer by identifier or by account, not both")
            return "identifier", customer
        if account is None or len(account) != 12 or not account.isdigit():
            raise ValueError(
                f"a customer is a CustomerIdentifier, or customer_account= an AWS account ID "
                f"of 12 digits (not {account!r})"
            )
        return "account", account

    def _tag_key(self, tags: Mapping[str, str] | None) -> Tags:
        if not tags:
            return ()
        raw = tuple(tags.items())
        found = self._tags.get(raw)
        if found is None:
            found = checked_tags(tags)
            if len(self._tags) < 10_000:
                self._tags[raw] = found
        return found

    # -- keeping and sending -----------------------------------------------------------

    def sync(self) -> int:
        """Write what was recorded since the last sync to the outbox; how many entries."""
        hour = int(self._now()) // 3600 * 3600
        with self._lock:
            for kind, who, license_arn, dimension in self._alive:  # heartbeats: a zero
                self._pending.setdefault((kind, who, license_arn, dimension, (), hour), [0, False])
            taken, self._pending = self._pending, {}
            for group in [g for g in self._allocated if g[4] < hour - 25 * 3600]:
                del self._allocated[group]  # past every window: never sent again
        if not taken:
            return 0
        deltas = {
            UsageKey(self.product_code, self.mode, k[0], k[1], k[2], k[3], k[5], k[4]): (
                v[0],
                v[1],
            )
            for k, v in taken.items()
        }
        try:
            late = self._outbox.add(deltas, self._now())
        except BaseException:
            with self._lock:  # kept for the next sync: nothing lost, nothing twice
                for key, (micros, fractional) in taken.items():
                    entry = self._pending.setdefault(key, [0, False])
                    entry[0] += micros
                    entry[1] = entry[1] or fractional
            raise
        if late:
            log.warning("%d entries recorded after their hour was sent: kept as failed", late)
        return len(taken)

    def send(self, *, settled: bool = True) -> int:
        """Send the due records of closed hours (settled ones only, unless told otherwise);
        how many groups were claimed."""
        now = self._now()
        edge = now - self._settle.total_seconds() if settled else now
        return self._sender.send_due(int(edge) // 3600 * 3600)

    def flush(self, timeout: float = 60.0) -> int:
        """Keep what was recorded, then send every closed hour now and wait until each is
        sent, failed or expired (or `timeout` seconds pass). How many are still pending."""
        self.sync()
        deadline = time.monotonic() + timeout
        closed_before = int(self._now()) // 3600 * 3600
        while True:
            self._sender.send_due(closed_before)
            left = self._outbox.pending_before(self.product_code, closed_before)
            if left == 0 or time.monotonic() >= deadline:
                return left
            time.sleep(0.2)

    def close(self) -> None:
        """Stop the background threads and keep what was recorded (nothing is sent)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self.sync()
        self._outbox.close()
        if self._own_client:
            self._client.close()

    def __enter__(self) -> UsageMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sync_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.sync()
            except Exception as exc:  # the outbox busy or the disk full: next time
                log.warning("keeping usage failed (kept in memory): %s", exc)

    def _send_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.send()
            except Exception:
                log.exception("sending failed; trying again")
