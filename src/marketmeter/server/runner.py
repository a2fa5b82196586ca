"""Running the server processes: uvicorn (uvloop where installed), one-write protocol.

Settings reach the worker processes as MARKETMETER_* environment variables; each builds
its application with `marketmeter.app:app_from_environment`.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from marketmeter.config import Settings
from marketmeter.metrics import MULTIPROCESS_DIR
from marketmeter.server.logs import log_config

APP_FACTORY = "marketmeter.app:app_from_environment"
HTTP_PROTOCOL = "marketmeter.server.one_write:OneWriteHttpToolsProtocol"


def run(settings: Settings) -> None:
    """Serve until interrupted, in `settings.workers` processes."""
    import uvicorn

    os.environ.update(settings.to_environment())
    allow_open_files(settings.max_connections + 256)
    with metrics_directory():
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            log_config=log_config(settings.log_level, settings.log_format),
            loop="auto",  # uvloop where installed
            http=HTTP_PROTOCOL,
            ws="none",  # (no WebSocket route: its protocol is not even loaded)
            access_log=False,
            server_header=False,
            lifespan="on",
            limit_concurrency=settings.max_connections,
            ssl_certfile=settings.tls_cert or None,
            ssl_keyfile=settings.tls_key or None,
        )


def allow_open_files(wanted: int) -> None:
    """Raise this process's (and its workers') limit of open files towards `wanted`, as
    far as the hard limit allows: each connection is one, and the usual soft limit (1024)
    would refuse connections long before `--max-connections`."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@contextmanager
def metrics_directory() -> Iterator[Path]:
    """Where the processes' metrics meet (`metrics.py`): `PROMETHEUS_MULTIPROC_DIR` if set
    (emptied of an earlier run's files first), else a directory made for this run and
    removed after it."""
    given = os.environ.get(MULTIPROCESS_DIR)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield directory
        return
    directory = Path(tempfile.mkdtemp(prefix="marketmeter-metrics-"))
    os.environ[MULTIPROCESS_DIR] = str(directory)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again with the
    # handler it found installed: by default that ends the process at once, before this
    # `finally` (the directory was left behind by every `docker stop`). This handler ends
    # it by SystemExit instead, with the same status.
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        yield directory
    finally:
        signal.signal(signal.SIGTERM, previous)
        del os.environ[MULTIPROCESS_DIR]
        shutil.rmtree(directory, ignore_errors=True)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)
