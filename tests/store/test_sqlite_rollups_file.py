"""SQLite's usage rollups live in a file of their own (`<database>.rollups`): folds never
take the records' write lock, and the rollups — derived from the records — are filled
again whenever they cannot be trusted: lost, of a reset or restored database, or holding
records the database lost. Reports stay exact throughout (checked against the records)."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from datetime import timedelta
from functools import partial
from pathlib import Path

from marketmeter.domain.ports import UsageSlice
from marketmeter.store.backup import backup, restore
from marketmeter.store.sql import FoldSchedule
from marketmeter.store.sqlite import SqliteStore
from marketmeter.store.sqlite_rollups import rollups_path
from tests.store.test_usage_rollups import (
    START,
    _chunks,
    _report_matches,
    some_records,
    sqlite_unfolded,
    sqlite_with_rollups,
)

PRODUCT = "prod-file"


def _open(path: Path) -> SqliteStore:
    """A store whose folds run only when a test asks (none due by a timer meanwhile)."""
    store = SqliteStore(path)
    store.folds = FoldSchedule(rows=10**9, seconds=10**9)
    return store


def _store(store: SqliteStore, records: list) -> None:  # type: ignore[type-arg]
    with store.transaction() as tx:
        assert tx.claim_slots(records) == records


def _logged(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM usage_pending").fetchone()[0])


def test_the_rollups_live_beside_the_database_and_a_fold_never_takes_its_write_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.db"
    store = _open(path)
    try:
        _store(store, some_records(PRODUCT, 30, seed=1))
        assert Path(rollups_path(str(path))).is_file()
        with closing(sqlite3.connect(path)) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert not tables & {"usage_by_hour", "usage_by_day", "usage_folded"}
        # Another connection holds the database's write lock (as a writer would): a fold
        # still runs, at once, and moves every record.
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            assert store.fold_usage() > 0
            assert time.monotonic() - started < 2  # (the busy timeout is 5 s)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        with closing(sqlite_with_rollups(path)) as conn:
            assert sqlite_unfolded(conn) == 0
        _report_matches(store, PRODUCT)
    finally:
        store.close()


def test_a_fold_that_waited_for_the_rollups_lock_reads_the_records_as_they_are_then(
    tmp_path: Path,
) -> None:
    """A fold takes the rollups' lock before its snapshot of the records: records stored
    while it waited (here another connection holds the lock, as another process's fold
    would) are folded too, never left behind a snapshot older than the rollups."""
    path = tmp_path / "m.db"
    plain = [r for r in some_records(PRODUCT, 80, seed=13) if r.allocations is None]
    first, second = plain[:10], plain[10:20]
    store = _open(path)
    holder = sqlite3.connect(rollups_path(str(path)), isolation_level=None)
    try:
        _store(store, first)
        holder.execute("BEGIN IMMEDIATE")
        moved: list[int] = []
        folding = threading.Thread(target=lambda: moved.append(store.fold_usage()))
        folding.start()
        time.sleep(0.2)  # the fold waits for the lock
        _store(store, second)
        holder.execute("ROLLBACK")
        folding.join()
        assert moved == [20]
        _report_matches(store, PRODUCT)
    finally:
        holder.close()
        store.close()


def test_folded_log_rows_are_deleted_by_a_later_writer_or_the_next_process(
    tmp_path: Path,
) -> None:
    """Records with allocations are logged in `usage_pending`; a fold marks them folded in
    the rollups' file, and the next transaction deletes them. A process killed between the
    two leaves them behind: ignored by reports, deleted by the next process's writes."""
    path = tmp_path / "m.db"
    first, second, third = _chunks(some_records(PRODUCT, 90, seed=2), 30)
    store = _open(path)
    try:
        _store(store, first)
        logged = _logged(path)
        assert logged > 0  # (about half the records have allocations)
        assert store.fold_usage() > 0
        assert _logged(path) == logged  # not yet: the mark is in the other file
        _report_matches(store, PRODUCT)
        _store(store, second)
        assert _logged(path) == _logged_of(second)  # the first's rows are gone
        assert store.fold_usage() > 0
    finally:
        store.close()  # "killed" after the fold: no writer deleted the second's rows
    assert _logged(path) == _logged_of(second)
    store = _open(path)
    try:
        _report_matches(store, PRODUCT)  # the rows left behind are not counted twice
        _store(store, third)
        assert _logged(path) == _logged_of(third)  # deleted by this process's first write
        _report_matches(store, PRODUCT)
        store.fold_usage()
        _report_matches(store, PRODUCT)
    finally:
        store.close()


def test_a_log_row_made_once_every_row_below_the_mark_is_deleted_is_counted(
    tmp_path: Path,
) -> None:
    """The log's `seq`s are never given twice: with the log emptied by a writer after a
    fold, a plain rowid would number the next row 1 again — under the mark, never counted."""
    path = tmp_path / "m.db"
    tagged = [r for r in some_records(PRODUCT, 80, seed=10) if r.allocations is not None]
    first, second = tagged[:10], tagged[10:20]
    store = _open(path)
    try:
        _store(store, first)
        assert store.fold_usage() > 0
        with store.transaction():
            pass  # deletes every folded row: the log is empty
        assert _logged(path) == 0
        _store(store, second)
        with closing(sqlite_with_rollups(path)) as conn:
            lowest = conn.execute("SELECT min(seq) FROM usage_pending").fetchone()[0]
            (mark,) = conn.execute("SELECT pending_seq FROM rollups.usage_folded").fetchone()
        assert lowest > mark
        _report_matches(store, PRODUCT)
        store.fold_usage()
        _report_matches(store, PRODUCT)
    finally:
        store.close()


def _logged_of(records: list) -> int:  # type: ignore[type-arg]
    """The log rows records make: one per distinct tag set of their allocations."""
    return sum(
        len({tuple(sorted((t.key, t.value) for t in a.tags)) for a in r.allocations})
        for r in records
        if r.allocations is not None
    )


def test_a_lost_rollups_file_is_filled_again_from_the_records(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    store = _open(path)
    try:
        old, new = _chunks(some_records(PRODUCT, 60, seed=3), 30)
        _store(store, old)
        store.fold_usage()
        _store(store, new)  # some folded, some not
    finally:
        store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(rollups_path(str(path)) + suffix).unlink(missing_ok=True)
    store = _open(path)
    try:
        with closing(sqlite_with_rollups(path)) as conn:  # filled again on opening
            (generation,) = conn.execute("SELECT generation FROM usage_generation").fetchone()
            marks = conn.execute(
                "SELECT generation, records_seq FROM rollups.usage_folded"
            ).fetchone()
            assert marks == (generation, 60)  # every record summed
            assert sqlite_unfolded(conn) == 0
        _report_matches(store, PRODUCT)
    finally:
        store.close()


def test_rollups_holding_records_the_database_lost_are_filled_again_on_opening(
    tmp_path: Path,
) -> None:
    """A power cut can take a database's last commits (synchronous=NORMAL) while the
    rollups' file (FULL) keeps a fold of them. Opening notices the rollups' marks beyond
    the records and sums the records again; records stored after are counted."""
    path = tmp_path / "m.db"
    kept, lost, later = _chunks(some_records(PRODUCT, 90, seed=4), 30)
    store = _open(path)
    try:
        _store(store, kept)
        _store(store, lost)
        store.fold_usage()
    finally:
        store.close()
    with closing(sqlite3.connect(path)) as conn:  # the power cut, as the database sees it
        ids = [r.record_id for r in lost]
        conn.execute(
            f"DELETE FROM metering_records WHERE record_id IN ({', '.join('?' * len(ids))})", ids
        )
        conn.commit()
    store = _open(path)
    try:
        _report_matches(store, PRODUCT)
        _store(store, later)  # their seqs are the lost ones'
        _report_matches(store, PRODUCT)
        store.fold_usage()
        _report_matches(store, PRODUCT)
        assert len(list(store.iter_records(PRODUCT))) == 60
    finally:
        store.close()


def test_a_log_mark_beyond_the_log_s_lost_rows_is_noticed_on_opening(tmp_path: Path) -> None:
    """A fold moves up to a limit of each part: here all the log's rows but not all the
    records, so only the log's mark lies beyond what a power cut left of the database."""
    path = tmp_path / "m.db"
    records = some_records(PRODUCT, 80, seed=11)
    plain = [r for r in records if r.allocations is None][:20]
    tagged = [r for r in records if r.allocations is not None][:3]
    store = _open(path)
    try:
        _store(store, plain)
        _store(store, tagged)  # the commit the power cut takes
        assert store.fold_usage(10) == 10 + _logged_of(tagged)  # records 1-10, every log row
    finally:
        store.close()
    with closing(sqlite3.connect(path)) as conn:  # as if that commit never reached the disk
        ids = [r.record_id for r in tagged]
        conn.execute(
            f"DELETE FROM metering_records WHERE record_id IN ({', '.join('?' * len(ids))})", ids
        )
        conn.execute("DELETE FROM usage_pending")
        conn.execute("DELETE FROM sqlite_sequence WHERE name = 'usage_pending'")
        conn.commit()
    store = _open(path)
    try:
        _report_matches(store, PRODUCT)  # the lost records' sums are not in it
        _store(store, tagged)  # their log rows' seqs are the lost ones'
        _report_matches(store, PRODUCT)
    finally:
        store.close()


def test_a_damaged_rollups_file_is_made_again(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    store = _open(path)
    try:
        _store(store, some_records(PRODUCT, 40, seed=12))
        store.fold_usage()
    finally:
        store.close()
    Path(rollups_path(str(path))).write_bytes(b"not a database at all " * 500)
    store = _open(path)
    try:
        _report_matches(store, PRODUCT)
        with closing(sqlite_with_rollups(path)) as conn:
            assert sqlite_unfolded(conn) == 0  # every record summed again on opening
    finally:
        store.close()


def test_a_reset_in_another_process_is_seen_by_this_ones_reports_and_folds(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.db"
    first, second = _chunks(some_records(PRODUCT, 60, seed=5), 30)
    serving, resetting = _open(path), _open(path)
    try:
        _store(serving, first)
        serving.fold_usage()
        _report_matches(serving, PRODUCT)
        with resetting.transaction() as tx:
            tx.clear_marketplace()
        _report_matches(serving, PRODUCT)  # nothing: the old rollups are not read
        _store(serving, second[:10])
        _report_matches(serving, PRODUCT)
        with resetting.transaction() as tx:
            tx.clear_marketplace()
        _store(serving, second[10:20])
        # The fold finds rollups of the records before the reset: it sums the ten records
        # there are again, instead of moving three.
        assert serving.fold_usage(3) == 10
        _report_matches(resetting, PRODUCT)
        _store(resetting, second[20:])
        _report_matches(serving, PRODUCT)
        assert len(list(serving.iter_records(PRODUCT))) == 20
    finally:
        serving.close()
        resetting.close()


def test_a_restored_database_gets_rollups_of_its_own_records(tmp_path: Path) -> None:
    """The backup has the generation of the rollups of the database it replaces, which
    hold records the backup lacks: a restore removes them (and opening would notice their
    marks beyond the records)."""
    path = tmp_path / "m.db"
    url = f"sqlite:///{path}"
    before, after = _chunks(some_records(PRODUCT, 60, seed=6), 30)
    store = _open(path)
    try:
        _store(store, before)
        store.fold_usage()
        backup(url, tmp_path / "b.db")
        _store(store, after)
        store.fold_usage()
    finally:
        store.close()
    restore(tmp_path / "b.db", url, replace=True)
    store = _open(path)
    try:
        assert len(list(store.iter_records(PRODUCT))) == 30
        _report_matches(store, PRODUCT)
    finally:
        store.close()


def test_a_report_reads_the_database_before_the_rollups(tmp_path: Path) -> None:
    """A fold, and a writer's deletion of the log rows it folded, both committed between a
    report's first read and its second, change nothing in it: read the other way round,
    the rollups would be from before the fold and the database from after the deletion."""
    path = tmp_path / "m.db"
    tagged = [r for r in some_records(PRODUCT, 80, seed=9) if r.allocations is not None]
    writer, reader = _open(path), _open(path)
    try:
        _store(writer, tagged)
        whole = UsageSlice(PRODUCT, START, START + timedelta(days=7), "hours")
        conn = reader._runner().connection
        statements: list[str] = []
        between: list[int] = []  # (an assertion inside SQLite's callback would be swallowed)

        def between_the_reads(sql: str) -> None:
            statements.append(sql)
            if len(statements) == 3:  # BEGIN, the first read; the second is starting
                between.append(writer.fold_usage())
                with writer.transaction():
                    pass  # (deletes the folded rows)
                between.append(_logged(path))

        conn.set_trace_callback(between_the_reads)
        try:
            sums = reader.usage_sums(whole)
        finally:
            conn.set_trace_callback(None)
        assert statements[0] == "BEGIN"
        assert len(statements) > 3
        folded, left = between
        assert folded == _logged_of(tagged)  # the fold moved every log row…
        assert left == 0  # …and a writer deleted them, between the report's two reads
        assert sum(s.count for s in sums) == len(tagged)
        assert sum(s.micros for s in sums) == sum(r.quantity.micros for r in tagged)
    finally:
        writer.close()
        reader.close()


def test_reports_beside_writes_folds_and_deletions_count_every_record_once(
    tmp_path: Path,
) -> None:
    """Another store on the same file (as another process) reports while records go in,
    twenty a transaction, folds move seven at a time and writers delete folded log rows:
    each report is of one moment — a whole number of transactions, between the counts
    read just before and after it. Every fifth transaction, the writer waits until a
    report has seen it (so that reports are made at several moments, however the threads
    are scheduled)."""
    path = tmp_path / "m.db"
    chunks = _chunks(some_records(PRODUCT, 600, seed=8), 20)
    writer, reader = _open(path), _open(path)
    done = threading.Event()
    failures: list[BaseException] = []
    seen: list[int] = []
    reported = threading.Condition()

    def write() -> None:
        try:
            for i, chunk in enumerate(chunks):
                _store(writer, chunk)
                if i % 5 == 4:
                    with reported:
                        stored = (i + 1) * 20
                        saw = partial(lambda n: max(seen, default=0) >= n, stored)
                        if not reported.wait_for(saw, 10):
                            raise AssertionError(f"no report saw {stored} records")
        except BaseException as exc:
            failures.append(exc)
        finally:
            done.set()

    def fold() -> None:
        try:
            while not done.is_set():
                writer.fold_usage(7)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write), threading.Thread(target=fold)]
    for t in threads:
        t.start()
    whole = UsageSlice(PRODUCT, START, START + timedelta(days=7), "hours")
    try:
        while not done.is_set():
            before = reader.count_records(PRODUCT)
            total = sum(s.count for s in reader.usage_sums(whole))
            after = reader.count_records(PRODUCT)
            assert before <= total <= after
            assert total % 20 == 0
            with reported:
                seen.append(total)
                reported.notify_all()
        for t in threads:
            t.join()
        assert failures == []
        assert {100, 200, 300, 400, 500} <= set(seen)  # reports ran while records went in
        assert sum(s.count for s in reader.usage_sums(whole)) == 600
        _report_matches(reader, PRODUCT)
    finally:
        done.set()
        writer.close()
        reader.close()
