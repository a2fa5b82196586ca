"""PostgreSQL's arrays go as text literals made by `array_literal` (one join, not
psycopg's element-by-element dump): every value must come back exactly as it went."""

from __future__ import annotations

import psycopg

from marketmeter.store.sql.runner import rows_select
from tests.postgres import TemporaryPostgres

AWKWARD = [
    "",
    "NULL",
    "null",
    '"',
    "\\",
    '\\"',
    "a,b",
    "{a}",
    " padded ",
    "tab\tnew\nline",
    "é漢字🙂",
    '{"team": "a\\"b"}',
    "'quoted'",
]


def test_every_value_comes_back_exactly(postgres: TemporaryPostgres) -> None:
    types = ("text", "bigint", "smallint", "boolean")
    rows = [
        (text, n, n % 3 if n % 2 else None, bool(n % 2) if n % 5 else None)
        for n, text in enumerate(AWKWARD, start=-3)
    ]
    rows += [(None, 2**62, -(2**15), True), ("last", -(2**63), 2**15 - 1, False)]
    source, params = rows_select("postgresql", types, rows)
    with psycopg.connect(postgres.create_database(), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n serial, a text, b bigint, c smallint, d boolean)")
        conn.execute(
            f"INSERT INTO t (a, b, c, d) SELECT * FROM ({source.replace('?', '%s')}) s", params
        )
        back = conn.execute("SELECT a, b, c, d FROM t ORDER BY n").fetchall()
    assert back == rows


def test_no_rows_is_an_empty_array(postgres: TemporaryPostgres) -> None:
    source, params = rows_select("postgresql", ("text", "bigint"), [])
    with psycopg.connect(postgres.create_database(), autocommit=True) as conn:
        assert conn.execute(source.replace("?", "%s"), params).fetchall() == []
