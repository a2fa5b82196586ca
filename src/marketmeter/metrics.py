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

A value is first counted in plain Python (`_Pending`) and written to prometheus-client's
values in bulk: by the scrape of the same process, and, under `serve` (multiprocess),
every half second by a thread of each process, so that a scrape of any process sees the
others' values at most that late. Writing each observation to the shared files as it came
(a lock and three writes to a memory-mapped file a request) cost MeterUsage ~7 % of its
throughput. A process killed with SIGKILL loses its last half second of counts.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_UNIT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
FLUSH_SECONDS = 0.5


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
            buckets=_UNIT_BUCKETS,
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


class _Pending:
    """Counts and observations not yet written to prometheus-client's values: per series,
    an amount (counters) or the count of each bucket and the sum (histograms)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, tuple[str, ...]], float] = {}
        self._observed: dict[tuple[str, tuple[str, ...]], list[float]] = {}
        self._started = False

    def count(self, counter: str, labels: tuple[str, ...], amount: float = 1) -> None:
        key = (counter, labels)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + amount
        if not self._started:
            self._start()

    def observe(
        self, histogram: str, labels: tuple[str, ...], bounds: tuple[float, ...], value: float
    ) -> None:
        key = (histogram, labels)
        with self._lock:
            tally = self._observed.get(key)
            if tally is None:
                tally = self._observed[key] = [0.0] * (len(bounds) + 2)  # … +Inf, sum
            tally[bisect_left(bounds, value)] += 1  # (a bucket counts values ≤ its bound)
            tally[-1] += value
        if not self._started:
            self._start()

    def flush(self) -> None:
        """Write what was counted to prometheus-client's values (the files, under `serve`)."""
        with self._lock:
            counts, self._counts = self._counts, {}
            observed, self._observed = self._observed, {}
        if not counts and not observed:
            return
        m = _metrics()
        for (name, labels), amount in counts.items():
            getattr(m, name).labels(*labels).inc(amount)
        for (name, labels), tally in observed.items():
            child = getattr(m, name).labels(*labels)
            for bucket, n in zip(child._buckets, tally[:-1], strict=True):
                if n:
                    bucket.inc(n)
            child._sum.inc(tally[-1])

    def _start(self) -> None:
        """Under `serve`, a thread that flushes every `FLUSH_SECONDS`, so that the other
        processes' scrapes see this one's values; elsewhere the scrape flushes."""
        with self._lock:
            if self._started:
                return
            self._started = True
        if os.environ.get(MULTIPROCESS_DIR):
            threading.Thread(target=self._flush_forever, name="metrics-flush", daemon=True).start()
            atexit.register(self.flush)

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def forked(self) -> None:
        """In a forked child: the parent's counts are the parent's, its thread is gone."""
        self.__init__()  # type: ignore[misc]


_pending = _Pending()
os.register_at_fork(after_in_child=_pending.forked)


def request_answered(operation: str, outcome: str, seconds: float) -> None:
    _pending.count("requests", (operation, outcome))
    _pending.observe("latency", (operation,), _LATENCY_BUCKETS, seconds)


def group_committed(store: str, units: int, seconds: float, records: int) -> None:
    _pending.observe("group_units", (store,), _UNIT_BUCKETS, units)
    _pending.observe("group_seconds", (store,), _LATENCY_BUCKETS, seconds)
    if records:
        _pending.count("records", (store,), records)


def group_failed(store: str, kind: str) -> None:
    _pending.count("store_errors", (store, kind))


def delivery_attempted(outcome: str) -> None:
    _pending.count("deliveries", (outcome,))


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

    _pending.flush()
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
