"""Applying the dialect's migrations (`store/migrations/<dialect>/NNNN_name.sql`)."""

from __future__ import annotations

from collections.abc import Callable

from marketmeter.store.migrations import migrations_for
from marketmeter.store.sql.runner import Runner
from marketmeter.store.sql.usage import rebuild_rollups

AFTER: dict[str, dict[int, Callable[[Runner], None]]] = {
    "postgresql": {6: rebuild_rollups},
    "sqlite": {},
}
"""What a migration needs done in Python once the run's SQL has all run (by dialect and
version). PostgreSQL: the rollups of version 6 are filled from the records already stored
through their log, which version 7 makes (a database already at 6 keeps its rollups: they
are exact). SQLite's rollups live in a file of their own since version 9, filled from the
records when the store opens (`store.sqlite_rollups`)."""


class SchemaReads:
    """What the database's schema lacks, run by `self._runner()`."""

    def _runner(self) -> Runner:
        raise NotImplementedError

    def pending_migrations(self) -> list[str]:
        run = self._runner()
        applied = {row[0] for row in run.fetchall("SELECT version FROM schema_migrations", ())}
        return [
            f"{m.version:04d}_{m.name}"
            for m in migrations_for(run.dialect)
            if m.version not in applied
        ]


def migrate(runner: Runner) -> None:
    """Apply the dialect's migrations not applied yet, in order, inside the caller's
    transaction (which holds the lock that keeps other processes from doing the same)."""
    runner.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        (),
    )
    applied = {row[0] for row in runner.fetchall("SELECT version FROM schema_migrations", ())}
    after: list[Callable[[Runner], None]] = []
    for migration in migrations_for(runner.dialect):
        if migration.version in applied:
            continue
        for statement in statements(migration.sql):
            runner.execute(statement, ())
        step = AFTER[runner.dialect].get(migration.version)
        if step is not None:
            after.append(step)
        runner.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
            (migration.version, migration.name),
        )
    for step in after:
        step(runner)


def statements(sql: str) -> list[str]:
    """A migration file's statements. Migrations use "--" for comments only, never inside
    string literals, and ";" only between statements — or inside a body that a statement
    holds whole: PostgreSQL's `$$ … $$`, a SQLite trigger's `BEGIN … END`."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    found: list[str] = []
    pending = ""
    for part in "\n".join(lines).split(";"):
        pending = f"{pending};{part}" if pending else part
        words = pending.upper().split()
        open_body = pending.count("$$") % 2 == 1 or (
            "TRIGGER" in words[:4] and "BEGIN" in words and words[-1:] != ["END"]
        )
        if open_body:
            continue
        if pending.strip():
            found.append(pending.strip())
        pending = ""
    if pending.strip():
        found.append(pending.strip())
    return found
