"""What every command shares: the `--database` option, and a service opened on it whose
mistakes become one line on stderr with exit code 1 (never a traceback)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import click

from marketmeter.config import Settings
from marketmeter.domain.errors import MeteringError
from marketmeter.domain.ports import StoreConflict, StoreUnavailable
from marketmeter.domain.service import MeteringService
from marketmeter.instants import parse_utc
from marketmeter.services import create_service, marketplace_clock
from marketmeter.store.factory import DEFAULT_DATABASE_URL, UnsupportedDatabase, open_store

F = TypeVar("F", bound=Callable[..., Any])


def database_option(f: F) -> F:
    return click.option(
        "--database",
        "database_url",
        envvar="MARKETMETER_DATABASE_URL",
        default=DEFAULT_DATABASE_URL,
        show_default=True,
        help="Database URL: sqlite:///file.db or postgresql://user@host:5432/db.",
    )(f)


@contextmanager
def opened(database_url: str, **settings: Any) -> Iterator[MeteringService]:
    try:
        store = open_store(database_url)
        service = create_service(
            Settings(database_url=database_url, **settings), store, marketplace_clock(store)
        )
    except (UnsupportedDatabase, StoreUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield service
    except (MeteringError, StoreUnavailable, StoreConflict) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        service.store.close()


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; without a zone, UTC. A one-line error otherwise."""
    try:
        return parse_utc(text)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
