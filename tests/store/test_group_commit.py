"""SQLite's group commit on an event loop: units run together, answer after the commit."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from marketmeter.domain.errors import DuplicateRequest
from marketmeter.domain.ports import StoreUnavailable, Transaction
from marketmeter.domain.usage import usage_report
from marketmeter.store.sqlite import SqliteStore
from tests.store.test_contract import HOUR, make_record


def test_grouped_units_fail_alone_and_are_answered_after_the_commit(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.db")
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


def test_without_an_event_loop_a_unit_runs_in_a_transaction_of_its_own(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    record = make_record()
    assert asyncio.run(store.run(lambda tx: tx.claim_slot(record))) == record

    def claim_then_fail(tx: Transaction) -> None:
        tx.claim_slot(make_record(dimension="x"))
        raise DuplicateRequest()

    with pytest.raises(DuplicateRequest):
        asyncio.run(store.run(claim_then_fail))
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
