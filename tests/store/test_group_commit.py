"""Group commit on an event loop, on both stores: units run together, each fails alone, and
all are answered after the commit."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from marketmeter.domain.errors import DuplicateRequest
from marketmeter.domain.models import ClientTokenEntry
from marketmeter.domain.ports import (
    Claiming,
    ClaimSlots,
    FirstClaim,
    StoreConflict,
    StoreUnavailable,
    Transaction,
)
from marketmeter.domain.usage import usage_report
from marketmeter.store.factory import open_store
from marketmeter.store.postgres import PostgresStore
from marketmeter.store.sql import FoldSchedule
from marketmeter.store.sqlite import SqliteStore
from marketmeter.store.sqlite_rollups import rollups_path
from tests.postgres import TemporaryPostgres
from tests.store.test_contract import HOUR, make_record
from tests.store.test_usage_rollups import sqlite_unfolded, sqlite_with_rollups


def test_grouped_units_fail_alone_and_are_answered_after_the_commit(database_url: str) -> None:
    store: Any = open_store(database_url)
    good, other = make_record(1), make_record(2, dimension="gb")

    def claim(record):  # type: ignore[no-untyped-def]
        return lambda tx: tx.claim_slot(record).record_id

    def fail(tx: Transaction) -> str:
        tx.claim_slot(make_record(3, dimension="third"))
        raise DuplicateRequest("no")

    async def main() -> list[object]:
        store.group_commit_on(asyncio.get_running_loop())
        return await asyncio.gather(
            store.run(claim(good)), store.run(fail), store.run(claim(other)), return_exceptions=True
        )

    first, failed, third = asyncio.run(main())
    assert first == good.record_id
    assert third == other.record_id
    assert isinstance(failed, DuplicateRequest)
    assert sorted(r.slot.dimension for r in store.iter_records()) == [
        "gb",
        "users",
    ]  # "third" undone
    # the group's rollups hold the two stored records, not the undone one
    report = usage_report(
        store, "prod", by="day", start=HOUR, end=HOUR + timedelta(hours=1), group=["dimension"]
    )
    assert {r.keys["dimension"]: (r.quantity, r.records) for r in report.rows} == {
        "users": (1, 1),
        "gb": (2, 1),
    }
    store.close()


def test_a_group_whose_commit_fails_answers_every_unit_with_a_retryable_error(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "f.db", busy_timeout_ms=50)
    blocker = sqlite3.connect(tmp_path / "f.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer, outside marketmeter's lock

    async def main() -> list[object]:
        store.group_commit_on(asyncio.get_running_loop())
        records = [make_record(i, dimension=f"d{i}") for i in range(3)]
        units = [store.run(lambda tx, r=r: tx.claim_slot(r)) for r in records]
        return await asyncio.gather(*units, return_exceptions=True)

    try:
        outcomes = asyncio.run(main())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert all(isinstance(o, StoreUnavailable) for o in outcomes)
    assert store.count_records() == 0
    store.close()


def test_without_an_event_loop_a_unit_runs_in_a_transaction_of_its_own(
    database_url: str,
) -> None:
    store = open_store(database_url)
    record = make_record()
    assert asyncio.run(store.run(lambda tx: tx.claim_slot(record))) == record

    def claim_then_fail(tx: Transaction) -> None:
        tx.claim_slot(make_record(dimension="x"))
        raise DuplicateRequest()

    with pytest.raises(DuplicateRequest):
        asyncio.run(store.run(claim_then_fail))
    assert store.count_records() == 1
    store.close()


def test_postgresql_runs_the_units_of_a_loop_iteration_in_one_transaction(
    postgres: TemporaryPostgres,
) -> None:
    store = PostgresStore(postgres.create_database())
    records = [make_record(i, dimension=f"d{i}") for i in range(4)]

    def claim(record):  # type: ignore[no-untyped-def]
        def unit(tx: Any) -> int:
            tx.claim_slot(record)
            return int(tx._runner().fetchone("SELECT txid_current()", ())[0])

        return unit

    def duplicate(tx: Transaction) -> None:
        tx.claim_slot(make_record(9, dimension="undone"))
        raise DuplicateRequest("no")

    async def main() -> list[object]:
        store.group_commit_on(asyncio.get_running_loop())
        first = await asyncio.gather(*(store.run(claim(r)) for r in records[:2]))
        units = [store.run(claim(records[2])), store.run(duplicate), store.run(claim(records[3]))]
        second = await asyncio.gather(*units, return_exceptions=True)
        return [*first, *second]

    a, b, c, failed, d = asyncio.run(main())
    assert a == b  # one transaction for the first group
    assert c == d != a  # and one for the second, though a unit in it failed
    assert isinstance(failed, DuplicateRequest)
    assert sorted(r.slot.dimension for r in store.iter_records()) == ["d0", "d1", "d2", "d3"]
    store.close()


def test_postgresql_sends_a_groups_batch_claims_ahead_and_answers_them_as_one_by_one(
    postgres: TemporaryPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BatchMeterUsage's units (`ClaimSlots`) of a group: their inserts go in one
    statement, and each unit's occupants are what running the units one after another
    gives — a slot taken before, a slot an earlier unit of the group takes. A unit whose
    claim the database refuses fails alone (the group runs again, one savepoint a unit)."""
    ahead = 0  # the groups' statements of claims sent ahead
    inserts = 0  # any other statement that stores records
    sent = psycopg.Connection.execute

    def counted(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal ahead, inserts  # a spy on psycopg's own execute
        text = str(query)
        if text.startswith("WITH stored AS (INSERT INTO metering_records") and "ORDINALITY" in text:
            ahead += 1
        elif "INSERT INTO metering_records" in text:
            inserts += 1
        return sent(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", counted)
    store = PostgresStore(postgres.create_database())
    before = make_record(1, dimension="before")
    asyncio.run(store.run(lambda tx: tx.claim_slot(before)))
    a = [make_record(2, dimension="a1"), make_record(3, dimension="before")]
    b = [make_record(4, dimension="a1"), make_record(5, dimension="b1")]
    c = [make_record(6, dimension="c1")]

    async def group(*batches: list[Any]) -> list[Any]:
        store.group_commit_on(asyncio.get_running_loop())
        return await asyncio.gather(
            *(store.run(ClaimSlots(batch)) for batch in batches), return_exceptions=True
        )

    inserts = 0
    occupants = asyncio.run(group(a, b, c))
    assert (ahead, inserts) == (1, 0)  # every unit answered from the one statement
    assert [[r.record_id for r in found] for found in occupants] == [
        [a[0].record_id, before.record_id],
        [a[0].record_id, b[1].record_id],
        [c[0].record_id],
    ]
    assert store.count_records() == 4

    # MeterUsage's first claims: a record and its ClientToken; the same token again.
    m1, m2 = make_record(10, dimension="m1"), make_record(11, dimension="m2")
    t1 = ClientTokenEntry("111122223333", "token-1", "print", m1.record_id, HOUR)
    t2 = ClientTokenEntry("111122223333", "token-1", "print", m2.record_id, HOUR)

    def metered(record: Any, token: ClientTokenEntry) -> Claiming:
        first = FirstClaim([record], token)
        return Claiming(first, lambda tx: tx.claim_slot_and_token(record, token))

    async def meter_group() -> list[Any]:
        store.group_commit_on(asyncio.get_running_loop())
        return await asyncio.gather(store.run(metered(m1, t1)), store.run(metered(m2, t2)))

    (one, both_one), (two, both_two) = asyncio.run(meter_group())
    assert (ahead, inserts) == (2, 0)
    assert (one.record_id, both_one) == (m1.record_id, True)
    assert (two.record_id, both_two) == (m2.record_id, False)  # stored, its token taken
    assert store.find_client_token("111122223333", "token-1") == t1
    assert store.count_records() == 6

    # One slot claimed by two MeterUsage units and a batch of the same group, in that
    # order: the first unit's record takes it, the others find it; the second unit's
    # token is not stored (its record was not), as when each unit runs in turn.
    m3, m4, m5 = (make_record(n, dimension="m3") for n in (12, 13, 14))
    t3 = ClientTokenEntry("111122223333", "token-3", "print", m3.record_id, HOUR)
    t4 = ClientTokenEntry("111122223333", "token-4", "print", m4.record_id, HOUR)

    async def same_slot() -> list[Any]:
        store.group_commit_on(asyncio.get_running_loop())
        return await asyncio.gather(
            store.run(metered(m3, t3)), store.run(metered(m4, t4)), store.run(ClaimSlots([m5]))
        )

    (third, stored_third), (fourth, stored_fourth), fifth = asyncio.run(same_slot())
    assert (ahead, inserts) == (3, 0)
    assert (third.record_id, stored_third) == (m3.record_id, True)
    assert (fourth.record_id, stored_fourth) == (m3.record_id, False)
    assert [r.record_id for r in fifth] == [m3.record_id]
    assert store.find_client_token("111122223333", "token-3") == t3
    assert store.find_client_token("111122223333", "token-4") is None
    assert store.count_records() == 7

    refused = [make_record(7, dimension="nul\x00")]  # PostgreSQL's text holds no NUL
    d, e = [make_record(8, dimension="d1")], [make_record(9, dimension="e1")]
    outcomes = asyncio.run(group(d, refused, e))
    assert ahead == 4  # (refused: the group ran again, each unit's claim in a savepoint)
    assert [r.record_id for r in outcomes[0]] == [d[0].record_id]
    assert isinstance(outcomes[1], StoreConflict), outcomes[1]
    assert [r.record_id for r in outcomes[2]] == [e[0].record_id]
    assert store.count_records() == 9
    store.close()


def test_a_postgresql_group_whose_connection_breaks_stores_nothing_and_answers_retryably(
    postgres: TemporaryPostgres,
) -> None:
    store = PostgresStore(postgres.create_database())

    def cut(tx: Any) -> None:  # as a server restart or a network cut would
        tx.claim_slot(make_record(7, dimension="cut"))
        tx._runner().execute("SELECT pg_terminate_backend(pg_backend_pid())", ())

    async def main() -> tuple[list[object], object]:
        store.group_commit_on(asyncio.get_running_loop())
        units = [store.run(lambda tx, r=r: tx.claim_slot(r)) for r in map(make_record, (1, 2))]
        broken = await asyncio.gather(store.run(cut), *units, return_exceptions=True)
        count = store.count_records()
        # The pool replaces the broken connection: the next group is stored.
        await store.run(lambda tx: tx.claim_slot(make_record(5)))
        return broken, count

    outcomes, stored_then = asyncio.run(main())
    assert all(isinstance(o, StoreUnavailable) for o in outcomes), outcomes
    assert stored_then == 0
    assert store.count_records() == 1
    store.close()


def test_a_writer_gives_up_when_another_process_keeps_the_lock(tmp_path: Path) -> None:
    import fcntl
    import os

    store = SqliteStore(tmp_path / "l.db", busy_timeout_ms=100)
    holder = os.open(os.path.realpath(tmp_path / "l.db") + ".lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)  # as another process's writer would
    try:
        with (
            pytest.raises(StoreUnavailable, match="held the write lock"),
            store.transaction() as tx,
        ):
            tx.claim_slot(make_record())
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
    with store.transaction() as tx:
        tx.claim_slot(make_record())
    assert store.count_records() == 1
    store.close()


def test_a_database_in_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="cannot open"):
        SqliteStore(tmp_path / "missing" / "x.db")


def test_postgresql_folds_the_usage_log_after_a_group_commits_on_a_thread_of_its_own(
    postgres: TemporaryPostgres,
) -> None:
    url = postgres.create_database()
    store = PostgresStore(url)
    store.folds = FoldSchedule(rows=3)  # due after this group's three records

    async def main() -> None:
        store.group_commit_on(asyncio.get_running_loop())
        records = [make_record(i + 1, dimension=f"d{i}") for i in range(3)]
        await asyncio.gather(*(store.run(lambda tx, r=r: tx.claim_slot(r)) for r in records))

    asyncio.run(main())
    with psycopg.connect(url) as conn:
        for _ in range(100):  # the fold runs after the answers
            pending = conn.execute("SELECT count(*) FROM usage_pending").fetchone()
            if pending == (0,):
                break
            time.sleep(0.05)
        folded = conn.execute("SELECT dimension, units FROM usage_by_hour ORDER BY 1").fetchall()
    assert pending == (0,)
    assert folded == [("d0", 1), ("d1", 2), ("d2", 3)]
    store.close()


def test_sqlite_folds_the_usage_log_after_a_group_commits_on_a_thread_of_its_own(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.db"
    store = SqliteStore(path)
    store.folds = FoldSchedule(rows=3)  # due after this group's three records
    threads: set[str] = set()
    fold = store._fold

    def watched_fold() -> None:
        threads.add(threading.current_thread().name)
        fold()

    store._fold = watched_fold  # type: ignore[method-assign]

    async def main() -> None:
        store.group_commit_on(asyncio.get_running_loop())
        records = [make_record(i + 1, dimension=f"d{i}") for i in range(3)]
        await asyncio.gather(*(store.run(lambda tx, r=r: tx.claim_slot(r)) for r in records))

    asyncio.run(main())
    with closing(sqlite_with_rollups(path)) as conn:
        for _ in range(100):  # the fold runs after the answers
            unfolded = sqlite_unfolded(conn)
            if unfolded == 0:
                break
            time.sleep(0.05)
        folded = conn.execute(
            "SELECT dimension, units FROM rollups.usage_by_hour ORDER BY 1"
        ).fetchall()
    assert unfolded == 0
    assert folded == [("d0", 1), ("d1", 2), ("d2", 3)]
    assert len(threads) == 1
    assert next(iter(threads)).startswith("sqlite-fold")
    store.close()


def test_a_fold_never_holds_up_a_group_it_locks_the_rollups_file_alone(
    tmp_path: Path,
) -> None:
    """While a fold waits for the rollups' file (here another connection holds its write
    lock, as another process's fold would), groups commit and are answered; the fold then
    moves their records."""
    path = tmp_path / "w.db"
    store = SqliteStore(path)
    holder = sqlite3.connect(rollups_path(str(path)), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        store.group_commit_on(loop)
        folding = loop.run_in_executor(None, store.fold_usage)
        await asyncio.sleep(0.1)
        assert not folding.done()  # waiting for the rollups' lock
        records = [make_record(i + 1, dimension=f"d{i}") for i in range(2)]
        stored = asyncio.gather(*(store.run(lambda tx, r=r: tx.claim_slot(r)) for r in records))
        got = await asyncio.wait_for(stored, timeout=2)
        assert not folding.done()  # the group did not wait for the fold
        holder.execute("ROLLBACK")
        await folding
        return list(got)

    got = asyncio.run(main())
    holder.close()
    assert len(got) == 2
    assert store.count_records() == 2
    store.fold_usage()  # (the first may have read the records before they were stored)
    with closing(sqlite_with_rollups(path)) as conn:
        assert sqlite_unfolded(conn) == 0
        assert conn.execute("SELECT sum(units) FROM rollups.usage_by_hour").fetchone() == (3,)
    store.close()


def test_sqlite_checkpoints_the_wal_on_a_thread_of_its_own_under_group_commit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.db"
    store = SqliteStore(path)

    def in_database_file() -> int:
        # `immutable` reads the database file alone, not the WAL: what a checkpoint copied.
        conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        try:
            return int(conn.execute("SELECT count(*) FROM metering_records").fetchone()[0])
        except sqlite3.DatabaseError:
            # Not even the schema copied yet; or a checkpoint was writing the pages read
            # (`immutable` promises SQLite that nothing writes the file): look again.
            return 0
        finally:
            conn.close()

    async def main() -> int:
        store.group_commit_on(asyncio.get_running_loop())
        records = [make_record(i + 1, dimension=f"d{i}") for i in range(5)]
        await asyncio.gather(*(store.run(lambda tx, r=r: tx.claim_slot(r)) for r in records))
        for _ in range(100):  # a few pages: far below any commit's own checkpoint
            if in_database_file() == 5:
                break
            await asyncio.sleep(0.05)
        return in_database_file()

    assert asyncio.run(main()) == 5
    store.close()
