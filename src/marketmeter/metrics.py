"""The server's metrics, in Prometheus' text format at `GET /metrics` (`prometheus-client`).

Under `serve`, every worker process writes its values to files in one directory
(`PROMETHEUS_MULTIPROC_DIR`, which `serve` makes unless given one), and `/metrics` of any
process sums them: one view of all `--workers`. Elsewhere (an application built in a
test, the in-process mock) the values are the process's own.

What is counted, and where:

- requests of the AWS APIs by operation and outcome (`ok`, or the error's `__type`), and
  their latency — the endpoint (`protocol/endpoint.py`);
- records stored, units a group commit carried and its time, groups that failed —
  each store's group (`store/sqlite.py`, `store/postgres.py`, `store/groups.py`);
- notification deliveries by outcome — the delivery worker;
- the outbox's backlog — read from the database when scraped.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _Metrics:
    """Made on first use, so that `serve` has set `PROMETHEUS_MULTIPROC_DIR` before
    prometheus-client is imported (it decides then where values live)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "marketmeter_requests",
            "Requests of the AWS APIs answered, by operation and outcome (ok, or the "
            "error's __type).",
            ["operation", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "marketmeter_request_duration_seconds",
            "Time from a request's headers to its answer, by operation.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.records = Counter(
            "marketmeter_records_stored",
            "Metering records stored (committed), by store.",
            ["store"],
            registry=r,
        )
        self.group_units = Histogram(
            "marketmeter_group_units",
            "Units of work (requests' writes) that one group commit carried.",
            ["store"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.group_seconds = Histogram(
            "marketmeter_group_duration_seconds",
            "Time a group's transaction took, its commit included.",
            ["store"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "marketmeter_store_errors",
            "Groups of writes that failed as a whole (each of their requests answered with "
            "a retryable error), by store and kind (unavailable, conflict).",
            ["store", "kind"],
            registry=r,
        )
        self.deliveries = Counter(
            "marketmeter_deliveries",
            "Notification delivery attempts, by outcome (delivered, retrying, failed).",
            ["outcome"],
            registry=r,
        )
        # Series that alerts watch exist from the start, at 0 (an alert on `increase()`
        # of a series that does not exist yet never fires).
        for outcome in ("delivered", "retrying", "failed"):
            self.deliveries.labels(outcome)
        for store in ("sqlite", "postgresql"):
            for kind in ("unavailable", "conflict"):
                self.store_errors.labels(store, kind)


_made: dict[str, _Metrics] = {}
_making = threading.Lock()


def _metrics() -> _Metrics:
    """This process's metrics, made once (under a lock: several threads record)."""
    made = _made.get("metrics")
    if made is not None:
        return made
    with _making:
        if "metrics" not in _made:
            _made["metrics"] = _Metrics()
        return _made["metrics"]


def request_answered(operation: str, outcome: str, seconds: float) -> None:
    series = _answered.get((operation, outcome))
    if series is None:  # (`labels()` checks and locks on every call: once a pair)
        m = _metrics()
        series = m.requests.labels(operation, outcome), m.latency.labels(operation)
        _answered[(operation, outcome)] = series
    series[0].inc()
    series[1].observe(seconds)


_answered: dict[tuple[str, str], tuple[Any, Any]] = {}
"""The request series of each (operation, outcome) pair, once made."""


def group_committed(store: str, units: int, seconds: float, records: int) -> None:
    m = _metrics()
    m.group_units.labels(store).observe(units)
    m.group_seconds.labels(store).observe(seconds)
    if records:
        m.records.labels(store).inc(records)


def group_failed(store: str, kind: str) -> None:
    _metrics().store_errors.labels(store, kind).inc()


def delivery_attempted(outcome: str) -> None:
    _metrics().deliveries.labels(outcome).inc()


class _Backlog:
    """The outbox's deliveries still to make, read from the database when scraped (every
    process sees the same database: one value, not a sum)."""

    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        yield GaugeMetricFamily(
            "marketmeter_outbox_backlog",
            "Notifications waiting to be delivered (pending, due or not).",
            value=self._count(),
        )


class _Scrape:
    def __init__(self, *sources: Any) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Any]:
        for source in self._sources:
            yield from source.collect()


def exposition(pending_deliveries: Callable[[], int]) -> bytes:
    """The text of `GET /metrics`: every process's values (multiprocess mode), else this
    process's; and the outbox's backlog."""
    from prometheus_client import generate_latest

    source: Any = _metrics().registry  # (made here too: a process's files exist from then)
    if os.environ.get(MULTIPROCESS_DIR):
        from prometheus_client.multiprocess import MultiProcessCollector

        source = MultiProcessCollector(None)  # type: ignore[no-untyped-call]
    return bytes(generate_latest(_Scrape(source, _Backlog(pending_deliveries))))


class MetricsEndpoint:
    """`GET /metrics` (ASGI). With a `token` (`MARKETMETER_METRICS_TOKEN`), only for
    `Authorization: Bearer <token>`; else open, as Prometheus' endpoints usually are on
    a private network."""

    def __init__(self, pending_deliveries: Callable[[], int], token: str = "") -> None:
        self._pending = pending_deliveries
        self._token = f"Bearer {token}".encode() if token else b""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import asyncio
        import hmac

        from marketmeter.asgi import reply

        text, no_store = b"text/plain; charset=utf-8", [(b"cache-control", b"no-store")]
        if scope["method"] not in ("GET", "HEAD"):
            await reply(send, 405, b"use GET\n", text, [*no_store, (b"allow", b"GET, HEAD")])
            return
        if self._token:
            given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            if not hmac.compare_digest(given, self._token):
                challenge = (b"www-authenticate", b"Bearer")
                await reply(send, 401, b"a bearer token is needed\n", text, [*no_store, challenge])
                return
        body = await asyncio.to_thread(exposition, self._pending)
        await reply(send, 200, body, CONTENT_TYPE.encode(), no_store)
