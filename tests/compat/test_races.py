"""Identical and conflicting requests racing on several server processes that share one
database: the unique keys decide, so exactly one record is stored per slot."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest

from tests.compat.concurrency import race
from tests.compat.conftest import Fresh, compat_keys, new_database, recent, start_server
from tests.compat.server import Server, free_port, marketmeter
from tests.factories import AMI, SAAS

pytestmark = pytest.mark.compat

RACERS = 24


@pytest.fixture(scope="module")
def servers(
    store_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Server]]:
    """`serve --workers 4`, and a second, independent server (2 workers) on the same
    database."""
    directory = tmp_path_factory.mktemp(f"races-{store_kind}")
    first = start_server(new_database(request, store_kind, directory), directory, "--workers", "4")
    second_dir = tmp_path_factory.mktemp(f"races-{store_kind}-second")
    second = Server(
        first.database_url,
        free_port(),
        second_dir,
        ("--workers", "2"),
        keys=compat_keys(),
        fresh=first.fresh,
    )
    second.start()
    yield [first, second]
    second.stop()
    first.stop()


def clients_for(servers: list[Server], key: str = "seller") -> list[object]:
    """RACERS clients, alternating between the two servers (and so across processes)."""
    return [servers[i % 2].client(key) for i in range(RACERS)]


def stored_for(server: Server, account: str) -> list[tuple[str, str]]:
    """(MeteringRecordId, quantity) of every record stored for the customer."""
    return [
        (str(r[0]), str(r[1]))
        for r in server.sql(
            "SELECT record_id, quantity_text FROM metering_records WHERE customer_aws_account_id = ?",
            (account,),
        )
    ]


def test_identical_batches_racing_get_one_id_and_store_one_record(
    servers: list[Server], fresh: Fresh
) -> None:
    accounts = [fresh.customer()[0] for _ in range(5)]
    at = recent()
    records = [
        {"Timestamp": at, "CustomerAWSAccountId": a, "Dimension": "users", "Quantity": 7}
        for a in accounts
    ]
    outcomes = race(
        clients_for(servers),
        lambda c, i: c.batch_meter_usage(ProductCode=SAAS, UsageRecords=records),
    )
    assert all(o.ok for o in outcomes), [o.value for o in outcomes if not o.ok]
    for n, account in enumerate(accounts):
        ids = {o.value["Results"][n]["MeteringRecordId"] for o in outcomes}
        statuses = {o.value["Results"][n]["Status"] for o in outcomes}
        assert statuses == {"Success"}
        assert len(ids) == 1
        [(record_id, _)] = stored_for(servers[0], account)
        assert record_id in ids


def test_the_same_records_racing_in_different_orders_do_not_deadlock(
    servers: list[Server], fresh: Fresh
) -> None:
    accounts = [fresh.customer()[0] for _ in range(10)]
    at = recent()
    records = [
        {"Timestamp": at, "CustomerAWSAccountId": a, "Dimension": "storage_gb", "Quantity": 3}
        for a in accounts
    ]
    orders = [random.Random(i).sample(records, len(records)) for i in range(RACERS)]
    outcomes = race(
        clients_for(servers),
        lambda c, i: c.batch_meter_usage(ProductCode=SAAS, UsageRecords=orders[i]),
    )
    assert all(o.ok for o in outcomes), [o.value for o in outcomes if not o.ok]
    by_account: dict[str, set[str]] = {}
    for o in outcomes:
        for result in o.value["Results"]:
            assert result["Status"] == "Success"
            by_account.setdefault(result["UsageRecord"]["CustomerAWSAccountId"], set()).add(
                result["MeteringRecordId"]
            )
    assert all(len(ids) == 1 for ids in by_account.values())
    for account in accounts:
        assert len(stored_for(servers[0], account)) == 1


def test_different_quantities_racing_one_wins_the_rest_are_duplicates(
    servers: list[Server], fresh: Fresh
) -> None:
    account, _ = fresh.customer()
    at = recent()
    outcomes = race(
        clients_for(servers),
        lambda c, i: c.batch_meter_usage(
            ProductCode=SAAS,
            UsageRecords=[
                {
                    "Timestamp": at,
                    "CustomerAWSAccountId": account,
                    "Dimension": "users",
                    "Quantity": 100 + i,
                }
            ],
        ),
    )
    results = [o.value["Results"][0] for o in outcomes]
    winners = [r for r in results if r["Status"] == "Success"]
    assert len(winners) == 1
    assert sorted(r["Status"] for r in results) == ["DuplicateRecord"] * (RACERS - 1) + ["Success"]
    assert stored_for(servers[0], account) == [
        (winners[0]["MeteringRecordId"], str(winners[0]["UsageRecord"]["Quantity"]))
    ]


def test_identical_meter_usage_racing_gets_one_id(servers: list[Server], fresh: Fresh) -> None:
    key = fresh.buyer_key()
    at = recent()
    # boto3 gives every call its own ClientToken: the hourly rule makes them one record.
    outcomes = race(
        clients_for(servers, key),
        lambda c, i: c.meter_usage(
            ProductCode=AMI, Timestamp=at, UsageDimension="gb", UsageQuantity=5
        ),
    )
    assert all(o.ok for o in outcomes), [o.value for o in outcomes if not o.ok]
    ids = {o.value["MeteringRecordId"] for o in outcomes}
    assert len(ids) == 1
    key_id = servers[0].keys[key][0]
    assert servers[0].sql(
        "SELECT record_id FROM metering_records WHERE resource = ?", (key_id,)
    ) == [(ids.pop(),)]


def test_different_quantity_meter_usage_racing_one_wins(
    servers: list[Server], fresh: Fresh
) -> None:
    key = fresh.buyer_key()
    at = recent()
    outcomes = race(
        clients_for(servers, key),
        lambda c, i: c.meter_usage(
            ProductCode=AMI, Timestamp=at, UsageDimension="gb", UsageQuantity=i
        ),
    )
    winners = [o for o in outcomes if o.ok]
    assert len(winners) == 1
    assert {(o.value, o.status) for o in outcomes if not o.ok} == {
        ("DuplicateRequestException", 400)
    }
    key_id = servers[0].keys[key][0]
    rows = servers[0].sql("SELECT record_id FROM metering_records WHERE resource = ?", (key_id,))
    assert rows == [(winners[0].value["MeteringRecordId"],)]


def test_one_client_token_racing_is_one_request(servers: list[Server], fresh: Fresh) -> None:
    key = fresh.buyer_key()
    token = str(uuid.uuid4())
    at = recent()
    outcomes = race(
        clients_for(servers, key),
        lambda c, i: c.meter_usage(
            ProductCode=AMI,
            Timestamp=at,
            UsageDimension="vcpu_hours",
            UsageQuantity=2,
            ClientToken=token,
        ),
    )
    assert all(o.ok for o in outcomes), [o.value for o in outcomes if not o.ok]
    assert len({o.value["MeteringRecordId"] for o in outcomes}) == 1
    assert servers[0].sql(
        "SELECT COUNT(*) FROM client_tokens WHERE client_token = ?", (token,)
    ) == [(1,)]


def test_one_registration_token_resolved_at_once_everywhere(
    servers: list[Server], fresh: Fresh
) -> None:
    account, identifier = fresh.customer()
    token = marketmeter(
        "token",
        "issue",
        "--database",
        servers[0].database_url,
        "--product",
        SAAS,
        "--customer-account",
        account,
    ).stdout.splitlines()[-1]
    outcomes = race(clients_for(servers), lambda c, i: c.resolve_customer(RegistrationToken=token))
    assert all(o.ok for o in outcomes)
    answers = {
        (o.value["CustomerIdentifier"], o.value["LicenseArn"], o.value["Metadata"]["AgreementId"])
        for o in outcomes
    }
    assert len(answers) == 1
    assert next(iter(answers))[0] == identifier
