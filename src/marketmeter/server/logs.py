"""The server's log lines: `--log-format text` (the default, for a terminal) or `json`
(one object a line, for a log pipeline), for marketmeter's loggers and uvicorn's alike.

A failed request is one line (`marketmeter.endpoint`) with its request id, operation,
caller account (once its signature was checked) and `__type` — never its message, its
headers or its body: error messages may quote what was signed, and a request carries
signatures and registration tokens."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]
LOG_FORMATS = ("text", "json")
FIELDS = ("request_id", "operation", "account", "error_type", "status")
"""The structured fields a line may carry (`logging`'s `extra=`), in JSON as they are."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def log_config(level: str, log_format: str) -> dict[str, Any]:
    """`logging.config.dictConfig`'s configuration of a server process (uvicorn applies it
    in each worker): one handler on stderr, the chosen format, every logger at `level`."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter}
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    handler = {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "root": {"handlers": ["main"], "level": level.upper()},
        "loggers": {
            name: {"handlers": [], "level": level.upper(), "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "marketmeter")
        },
    }
