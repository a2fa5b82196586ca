"""Delivering the outbox: each pass claims what is due (a lease, so that one process sends
each delivery), sends it — SNS messages signed, EventBridge events as an API destination
posts them — and records the attempt: delivered on any 2xx; otherwise tried again with
backoff (`domain.outbox`) until 24 hours have passed, then failed.

A server runs a `DeliveryWorker` thread in each process; `marketmeter deliveries send`
runs one pass. Sending happens on a few threads of its own, a target's deliveries in the
order they were made — no pass, of any process, claims a target's delivery while an
earlier one is leased — so that a receiver that hangs (5 s per attempt) or fails holds up
nobody else — and never a metering request.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import orjson

from marketmeter import metrics
from marketmeter.clock import Clock
from marketmeter.delivery import sns
from marketmeter.domain.outbox import ATTEMPT_TIMEOUT, Attempt, Delivery, next_attempt, succeeded
from marketmeter.domain.ports import Store
from marketmeter.domain.targets import EventTarget, Webhook

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("marketmeter.delivery")
LEASE_SECONDS = 60.0


class Deliverer:
    def __init__(self, store: Store, clock: Clock, public_url: str, *, threads: int = 4) -> None:
        self._store = store
        self._clock = clock
        self._public_url = public_url
        self._signer: sns.SnsSigner | None = None
        self._http: httpx.Client | None = None  # made on first use: its TLS set-up is slow
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="delivery")
        self._threads = threads
        self._busy = 0
        self._sending: dict[str, list[Delivery]] = {}
        """Targets being sent to, each with what was claimed for it meanwhile: sent after,
        by the same thread. (A pass claims none of a target's deliveries while an earlier
        one is leased — `claim_due` — so this catches only those whose lease ran out
        while they waited for a thread.)"""
        self._lock = threading.Lock()

    def deliver_due(self, *, wait: bool = False) -> int:
        """Claim what is due (as much as free threads can send) and send it; with `wait`,
        return once it is sent. How many deliveries were claimed."""
        with self._lock:
            free = self._threads - self._busy
        if free <= 0:
            return 0
        claimed = self._store.claim_deliveries(self._clock.now(), free * 5, LEASE_SECONDS)
        by_target: dict[str, list[Delivery]] = defaultdict(list)
        for delivery in claimed:
            by_target[delivery.target_id].append(delivery)
        futures: list[Future[None]] = []
        for target_id, deliveries in by_target.items():
            with self._lock:
                waiting = self._sending.get(target_id)
                if waiting is not None:  # its thread sends these after what it has
                    waiting.extend(deliveries)
                    continue
                self._sending[target_id] = []
                self._busy += 1
            futures.append(self._pool.submit(self._send_in_order, target_id, deliveries))
        if wait:
            for future in futures:
                future.result()
        return len(claimed)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._http is not None:
            self._http.close()

    def prepare(self) -> None:
        """Load the HTTP client (and make it) before anything is due."""
        self._client()

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                import httpx  # on the first delivery: a server that sends none never loads it

                self._http = httpx.Client(timeout=ATTEMPT_TIMEOUT, follow_redirects=False)
            return self._http

    def _send_in_order(self, target_id: str, deliveries: list[Delivery]) -> None:
        try:
            while True:
                for delivery in deliveries:
                    self._attempt(delivery)
                with self._lock:  # more claimed meanwhile, or done (both under the lock)
                    deliveries = self._sending[target_id]
                    if not deliveries:
                        del self._sending[target_id]
                        self._busy -= 1
                        return
                    self._sending[target_id] = []
        except Exception:  # a fault of ours: the leases run out and they come again
            log.exception("delivering to %s failed", target_id)
            with self._lock:
                self._sending.pop(target_id, None)
                self._busy -= 1

    def _attempt(self, delivery: Delivery) -> None:
        number = delivery.attempts + 1
        status: int | None = None
        error: str | None = None
        request = self._request(delivery)
        if request is None:
            error = "the target was removed"
        else:
            url, body, headers = request
            client = self._client()
            from httpx import HTTPError  # (loaded by `_client`)

            try:
                status = client.post(url, content=body, headers=headers).status_code
                if not succeeded(status):
                    error = f"HTTP {status}"
            except HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        now = self._clock.now()
        delivered = status is not None and succeeded(status)
        retry_at = None if delivered or request is None else next_attempt(delivery, number, now)
        metrics.delivery_attempted(
            "delivered" if delivered else ("retrying" if retry_at is not None else "failed")
        )
        self._store.finish_attempt(
            delivery,
            Attempt(delivery.id, number, now, status, error),
            delivered=delivered,
            retry_at=retry_at,
        )

    def _request(self, delivery: Delivery) -> tuple[str, bytes, dict[str, str]] | None:
        if delivery.kind == "sns":
            webhook = self._store.get_webhook(delivery.target_id)
            if webhook is None:
                return None
            message = self._signed(delivery.body, webhook)
            return webhook.url, orjson.dumps(message), sns.headers(message, webhook)
        target = _target(self._store, delivery.target_id)
        if target is None:
            return None
        headers = {"Content-Type": "application/json", **target.headers}
        return target.url, orjson.dumps(delivery.body), headers

    def _signed(self, body: dict[str, Any], webhook: Webhook) -> dict[str, Any]:
        if self._signer is None:
            self._signer = sns.SnsSigner(self._store)
        return self._signer.envelope(body, webhook, self._public_url)


def _target(store: Store, target_id: str) -> EventTarget | None:
    return next((t for t in store.list_event_targets() if t.id == target_id), None)


STARTING_SECONDS = 1.0
"""How long a server process starts before its delivery worker does."""


class DeliveryWorker:
    """A server process's delivery loop, on a thread of its own: a pass every half second
    (at once again while a pass found work)."""

    def __init__(self, deliverer: Deliverer, interval: float = 0.5) -> None:
        self._deliverer = deliverer
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delivery-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        # Ready to send before the first pass, on this thread (not the start's): a slow
        # first send would let another process's later delivery to the same target pass it.
        # Not in the server's first moment, though: loading the HTTP client holds the GIL
        # for ~0.1 s, which the server's start-up would wait for.
        if self._stop.wait(STARTING_SECONDS):
            return
        try:
            self._deliverer.prepare()
        except Exception as exc:  # (then the first delivery makes it)
            log.warning("preparing to deliver failed: %s", exc)
        while not self._stop.is_set():
            try:
                found = self._deliverer.deliver_due()
            except Exception as exc:  # the database away: try again next time
                log.warning("delivery pass failed: %s", exc)
                found = 0
            self._stop.wait(0.05 if found else self._interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=ATTEMPT_TIMEOUT + 2)
        self._deliverer.close()
