"""Running the server processes: uvicorn (uvloop where installed), one-write protocol.

Settings reach the worker processes as MARKETMETER_* environment variables; each builds
its application with `marketmeter.app:app_from_environment`.
"""

from __future__ import annotations

import os

from marketmeter.config import Settings

APP_FACTORY = "marketmeter.app:app_from_environment"
HTTP_PROTOCOL = "marketmeter.server.one_write:OneWriteHttpToolsProtocol"


def run(settings: Settings) -> None:
    """Serve until interrupted, in `settings.workers` processes."""
    import uvicorn

    os.environ.update(settings.to_environment())
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        loop="auto",  # uvloop where installed
        http=HTTP_PROTOCOL,
        access_log=False,
        server_header=False,
        lifespan="on",
    )
