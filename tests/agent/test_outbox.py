"""The agent's outbox on real SQLite files: sums, leases, late usage, foreign files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from marketmeter.agent import OutboxError
from marketmeter.agent.outbox import LATE, Outbox, UsageKey

HOUR = 1_773_572_400  # 2026-03-15T11:00Z


def key(customer: str = "a", tags: tuple[tuple[str, str], ...] = ()) -> UsageKey:
    return UsageKey("prod", "batch", "identifier", customer, "", "users", HOUR, tags)


def test_usage_adds_up_per_group_and_tag_set(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.add({key(): (1_000_000, False), key(tags=(("t", "1"),)): (500_000, True)}, 1.0)
    box.add({key(): (2_000_000, False)}, 2.0)
    [group] = box.claim(product_code="prod", closed_before=HOUR + 1, now=10.0, lease=60, limit=10)
    assert group.micros == 3_500_000
    assert group.fractional
    assert sorted(group.parts) == [((), 3_000_000, False), ((("t", "1"),), 500_000, True)]


def test_a_leased_group_is_not_claimed_twice_until_its_lease_runs_out(tmp_path: Path) -> None:
    first, second = Outbox(tmp_path / "o.db"), Outbox(tmp_path / "o.db")  # two processes
    first.add({key(): (1, False)}, 1.0)
    assert (
        len(first.claim(product_code="prod", closed_before=HOUR + 1, now=10, lease=60, limit=9))
        == 1
    )
    assert (
        second.claim(product_code="prod", closed_before=HOUR + 1, now=20, lease=60, limit=9) == []
    )
    [again] = second.claim(product_code="prod", closed_before=HOUR + 1, now=71, lease=60, limit=9)
    assert again.attempts == 2


def test_usage_of_an_attempted_hour_is_kept_apart_as_late(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.add({key(): (1_000_000, False)}, 1.0)
    [group] = box.claim(product_code="prod", closed_before=HOUR + 1, now=10, lease=60, limit=9)
    assert box.add({key(): (5_000_000, False)}, 11.0) == 1
    box.finish(group, state="sent", now=12, record_id="id-1")
    rows = {(r[5], r[4], r[7]) for r in box.rows()}
    assert rows == {("sent", 1_000_000, None), ("failed", 5_000_000, LATE)}


def test_a_foreign_or_damaged_file_is_refused_not_reset(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(OutboxError, match="something else"):
        Outbox(other)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(OutboxError, match="not a usable outbox"):
        Outbox(garbage)
    assert garbage.read_bytes().startswith(b"this is not")


def test_failures_are_requeued_but_late_rows_are_not(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.add({key("a"): (1, False), key("b"): (1, False)}, 1.0)
    groups = box.claim(product_code="prod", closed_before=HOUR + 1, now=10, lease=60, limit=9)
    for group in groups:
        box.finish(group, state="failed", now=11, reason="CustomerNotSubscribed")
    box.add({key("a"): (7, False)}, 12.0)  # late
    assert box.requeue_failures(13.0) == 2
    again = box.claim(product_code="prod", closed_before=HOUR + 1, now=14, lease=60, limit=9)
    assert sorted(g.customer for g in again) == ["a", "b"]
    assert [f["reason"] for f in box.failures()] == [LATE]
