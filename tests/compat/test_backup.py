"""`marketmeter backup` while a server (two processes) stores records as fast as three
clients send them, then `marketmeter restore` into a new database: every record
acknowledged before the backup began is in it, once; and the commands' mistakes are one
clear line each. On both stores."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import new_database, pool_account, recent, start_server
from tests.compat.server import marketmeter
from tests.factories import SAAS

pytestmark = pytest.mark.compat


def exported(database_url: str) -> list[dict[str, Any]]:
    out = marketmeter("records", "export", "--database", database_url).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_a_backup_taken_under_load_restores_every_record_acknowledged_before_it(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = tmp_path_factory.mktemp(f"backup-{store_kind}")
    url = new_database(request, store_kind, directory)
    server = start_server(url, directory, "--workers", "2")
    at = recent()
    acked: list[tuple[float, str]] = []  # (when the answer came, the record's id)
    stop = threading.Event()
    lock = threading.Lock()

    def send(first: int) -> None:
        client = server.client()
        for i in range(first, 1000, 3):
            for dimension in ("users", "storage_gb"):
                if stop.is_set():
                    return
                record = {
                    "Timestamp": at,
                    "CustomerAWSAccountId": pool_account(i),
                    "Dimension": dimension,
                    "Quantity": 1,
                }
                out = client.batch_meter_usage(ProductCode=SAAS, UsageRecords=[record])
                answered = time.monotonic()
                assert out["Results"][0]["Status"] == "Success"
                with lock:
                    acked.append((answered, out["Results"][0]["MeteringRecordId"]))

    senders = [threading.Thread(target=send, args=(k,)) for k in range(3)]
    backup_file = directory / "marketmeter.backup"
    try:
        for sender in senders:
            sender.start()
        time.sleep(1.0)  # records being stored
        began = time.monotonic()
        made = marketmeter("backup", "--database", url, "--to", str(backup_file))
        ended = time.monotonic()
        time.sleep(0.3)
        stop.set()
        for sender in senders:
            sender.join(timeout=60)
    finally:
        stop.set()
        server.stop()
    assert "backed up to" in made.stdout
    before = {record_id for answered, record_id in acked if answered < began}
    during = {record_id for answered, record_id in acked if began <= answered < ended}
    assert len(before) > 50, "the load did not get going"
    assert during, "nothing was stored while the backup ran: not a backup under load"

    target = new_database(request, store_kind, tmp_path_factory.mktemp("restored"))
    restored = marketmeter("restore", "--database", target, "--from", str(backup_file))
    assert "metering records" in restored.stdout
    found = [r["MeteringRecordId"] for r in exported(target)]
    assert len(found) == len(set(found)), "a record restored twice"
    assert before <= set(found), f"{len(before - set(found))} acknowledged records lost"
    assert set(found) <= {record_id for _, record_id in acked}


def test_restoring_over_a_database_with_data_needs_replace(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    marketmeter("catalog", "apply", "--database", source, "/dev/null", check=False)
    backup_file = tmp_path / "copy.backup"
    marketmeter("backup", "--database", source, "--to", str(backup_file))
    target = f"sqlite:///{tmp_path / 'target.db'}"
    marketmeter("restore", "--database", target, "--from", str(backup_file))  # a new file
    again = marketmeter("restore", "--database", target, "--from", str(backup_file), check=False)
    assert again.returncode == 1
    assert "add --replace" in again.stderr
    assert "Traceback" not in again.stderr
    replaced = marketmeter("restore", "--database", target, "--from", str(backup_file), "--replace")
    assert "restored" in replaced.stdout


def test_backup_mistakes_are_one_clear_line(tmp_path: Path) -> None:
    missing = marketmeter(
        "backup",
        "--database",
        f"sqlite:///{tmp_path / 'none.db'}",
        "--to",
        str(tmp_path / "x.backup"),
        check=False,
    )
    assert missing.returncode == 1
    assert "no database file" in missing.stderr
    not_a_backup = tmp_path / "junk.backup"
    not_a_backup.write_text("not a database")
    junk = marketmeter(
        "restore",
        "--database",
        f"sqlite:///{tmp_path / 'new.db'}",
        "--from",
        str(not_a_backup),
        check=False,
    )
    assert junk.returncode == 1
    assert "is not a marketmeter SQLite database" in junk.stderr
    for result in (missing, junk):
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "new.db").exists()
