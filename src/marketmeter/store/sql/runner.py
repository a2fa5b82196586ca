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


def array_placeholders(types: Sequence[str]) -> str:
    """PostgreSQL: one placeholder a column, each an array of the column's type in its
    text form (`array_literal`)."""
    return ", ".join(f"?::text::{t}[]" for t in types)


_INTEGERS = frozenset({"bigint", "integer", "smallint"})


def array_literal(values: Sequence[Any], type_: str) -> str:
    """PostgreSQL's text form of a one-dimensional array of `type_` values (None: NULL),
    made in one join: psycopg dumps a list element by element in Python (about 0.17 µs
    an element, 17 a record; docs/performance.md, eighth round)."""
    if type_ == "boolean":
        items = ["NULL" if v is None else ("t" if v else "f") for v in values]
    elif type_ in _INTEGERS:
        items = ["NULL" if v is None else str(int(v)) for v in values]
    else:  # text, quoted: a backslash and a double quote escaped by a backslash
        items = [
            "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
            for v in values
        ]
    return "{" + ",".join(items) + "}"


def array_columns(types: Sequence[str], columns: Sequence[Sequence[Any]]) -> list[str]:
    """The parameters of `array_placeholders(types)`: each column's array literal."""
    return [array_literal(column, t) for column, t in zip(columns, types, strict=True)]


def rows_select(
    dialect: Dialect, types: Sequence[str], rows: Sequence[Sequence[Any]]
) -> tuple[str, list[Any]]:
    """A SELECT of `rows` (of columns of the PostgreSQL `types`) for `INSERT … SELECT`:
    one placeholder per column on PostgreSQL (arrays, unnested), one in all on SQLite (a
    JSON list of rows) — however many rows, one short statement to parse."""
    if dialect == "postgresql":
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in types]
        return f"SELECT * FROM unnest({array_placeholders(types)})", array_columns(types, columns)
    fields = ", ".join(f"value ->> {i}" for i in range(len(types)))
    # "WHERE true": SQLite's grammar needs it between a SELECT and an upsert's ON CONFLICT.
    return f"SELECT {fields} FROM json_each(?) WHERE true", [orjson.dumps(rows).decode()]
