"""A prototype of the next step in docs/performance.md ("Sixth round"): SQLite's usage
rollups in a file of their own (`<database>.rollups`). The fold writes there, reads the
records through a read-only attachment, and never takes the records' write lock.

It measures the write path only. Reports, reset, backup, the rows of `usage_pending`
(records with allocations; the benchmark sends none) and migrations are not adapted.
Never use it outside bench/. Run it as a variant of an A/B, e.g. with
`bench.alternate.alternate` and `Scenario(..., variant="bench.prototype_rollups_file")`, or
as `python -m bench.prototype_rollups_file serve …` (arguments as `marketmeter`'s).
"""

import sqlite3
import threading

import marketmeter.store.sqlite as s
from marketmeter.store.sql.usage import fold_usage

_lock = threading.Lock()


def _fold(self: s.SqliteStore) -> None:
    with _lock:
        conn = getattr(self, "_proto_rollups", None)
        if conn is None:
            path = self.path + ".rollups"
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, uri=True)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA cache_size = -65536")
            main = sqlite3.connect(self.path)
            ddl = [
                row[0]
                for row in main.execute(
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name IN "
                    "('usage_by_hour', 'usage_by_day', 'usage_folded')"
                )
            ]
            last = main.execute("SELECT COALESCE(MAX(last_seq), 0) FROM usage_folded").fetchone()[0]
            main.close()
            for sql in ddl:
                conn.execute(sql.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))
            conn.execute("INSERT OR IGNORE INTO usage_folded (id, last_seq) VALUES (1, ?)", (last,))
            conn.execute(f"ATTACH 'file:{self.path}?mode=ro' AS rec")
            self._proto_rollups = conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        fold_usage(s.SqliteRunner(conn))
        conn.execute("COMMIT")
    finally:
        s._end_transaction(conn)


s.SqliteStore._fold = _fold  # type: ignore[method-assign]

if __name__ == "__main__":
    from marketmeter.cli import main

    main()
