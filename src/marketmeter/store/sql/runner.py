"""How the shared queries reach a database: a `Runner` executes one statement on one
connection; queries are written once with `?` placeholders."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Literal, Protocol

import orjson

Dialect = Literal["sqlite", "postgresql"]
Params = tuple[Any, ...] | list[Any]


class Runner(Protocol):
    """Executes one statement of this package on one connection."""

    dialect: Dialect

    def fetchone(self, sql: str, params: Params) -> Any: ...

    def fetchall(self, sql: str, params: Params) -> list[Any]: ...

    def execute(self, sql: str, params: Params) -> int:
        """Run a write; the number of rows it changed."""
        ...

    def select_rows(
        self, types: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> tuple[str, list[Any]]:
        """A SELECT of `rows` (columns of the PostgreSQL `types`) for `INSERT … SELECT`,
        and its parameters: `rows_select`'s, or on PostgreSQL, for many rows inside a
        transaction, a table they were copied into."""
        ...


def any_of(dialect: Dialect, column: str, values: Collection[str]) -> tuple[str, Any]:
    """`column` equal to one of `values`, as one placeholder whatever their number — one
    statement text, so prepared once: an array on PostgreSQL, a JSON list on SQLite."""
    if dialect == "postgresql":
        return f"{column} = ANY(?)", list(values)
    return f"{column} IN (SELECT value FROM json_each(?))", orjson.dumps(list(values)).decode()


def rows_select(
    dialect: Dialect, types: Sequence[str], rows: Sequence[Sequence[Any]]
) -> tuple[str, list[Any]]:
    """A SELECT of `rows` (of columns of the PostgreSQL `types`) for `INSERT … SELECT`:
    one placeholder per column on PostgreSQL (arrays, unnested), one in all on SQLite (a
    JSON list of rows) — however many rows, one short statement to parse."""
    if dialect == "postgresql":
        arrays = ", ".join(f"?::{t}[]" for t in types)
        return f"SELECT * FROM unnest({arrays})", [
            list(column) for column in zip(*rows, strict=True)
        ]
    fields = ", ".join(f"value ->> {i}" for i in range(len(types)))
    # "WHERE true": SQLite's grammar needs it between a SELECT and an upsert's ON CONFLICT.
    return f"SELECT {fields} FROM json_each(?) WHERE true", [orjson.dumps(rows).decode()]
