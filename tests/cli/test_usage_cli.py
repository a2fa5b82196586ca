"""`marketmeter usage report`, run in-process on a real SQLite file."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from marketmeter.cli import main
from marketmeter.clock import FixedClock, OffsetClock
from marketmeter.domain.service import MeteringService
from marketmeter.store.sqlite import SqliteStore
from tests.factories import (
    AMI,
    BUYER,
    BUYER_IDENTIFIER,
    BUYER_LICENSE,
    SAAS,
    alloc,
    caller,
    make_catalog,
    meter,
    record,
)

NOW = datetime(2026, 11, 15, 12, 30, tzinfo=UTC)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A catalog; the marketplace's clock at NOW; usage metered in this hour and the one
    before: users 2.5 + 4 (the second tagged team=a 1 and team=b/c 3), storage_gb 7."""
    url = f"sqlite:///{tmp_path / 'usage.db'}"
    path = tmp_path / "catalog.yaml"
    catalog = make_catalog()
    saas = next(p for p in catalog["products"] if p["product_code"] == SAAS)
    saas["prices"] = {"users": {"price_per_unit": 0.125, "currency": "USD"}}
    path.write_text(yaml.safe_dump(catalog))
    assert run("catalog", "apply", "--database", url, str(path)).exit_code == 0
    assert run("clock", "set", "--database", url, NOW.isoformat()).exit_code == 0
    store = SqliteStore(tmp_path / "usage.db")
    service = MeteringService(store, FixedClock(NOW))
    now = NOW
    earlier = now - timedelta(hours=1)
    outcome = service.batch_meter_usage(
        caller("seller"),
        SAAS,
        [
            record(now, quantity="2.50"),
            record(now, dimension="storage_gb", quantity=7),
            record(
                earlier,
                quantity=4,
                allocations=(alloc(1, team="a"), alloc(3, team="b/c")),
            ),
        ],
    )
    assert all(r.status == "Success" for r in outcome.results)
    store.close()
    return url


def report(db: str, *args: str) -> Result:
    return run("usage", "report", "--database", db, "--product", SAAS, *args)


def test_the_json_report_has_the_documented_shape(db: str) -> None:
    result = report(db, "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["product"] == SAAS
    assert document["by"] == "day"
    # by default: from the month's start until now (by the marketplace's clock), in days
    assert document["from"] == "2026-11-01T00:00:00Z"
    assert document["to"] == "2026-11-16T00:00:00Z"
    assert document["total"] == "13.5"
    by_dimension = {r["dimension"]: r for r in document["rows"]}
    assert by_dimension["users"]["quantity"] == "6.5"
    assert by_dimension["users"]["records"] == 2
    assert by_dimension["users"]["customer_identifier"] == BUYER_IDENTIFIER
    assert by_dimension["users"]["customer_aws_account_id"] == BUYER
    assert by_dimension["storage_gb"]["quantity"] == "7"
    assert set(by_dimension["users"]) == {
        "period",
        "customer_identifier",
        "customer_aws_account_id",
        "dimension",
        "quantity",
        "records",
    }


def test_hours_and_tag_groups(db: str) -> None:
    now = NOW.replace(minute=0)
    result = report(
        db,
        "--by",
        "hour",
        "--group",
        "tag:team",
        "--from",
        (now - timedelta(hours=1)).isoformat(),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["rows"]
    previous = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:00:00Z")
    current = now.strftime("%Y-%m-%dT%H:00:00Z")
    assert rows == [
        {"period": previous, "tag:team": "a", "quantity": "1", "records": 1},
        {"period": previous, "tag:team": "b/c", "quantity": "3", "records": 1},
        {"period": current, "tag:team": None, "quantity": "9.5", "records": 2},
    ]


def test_csv_has_a_header_and_a_row_per_group(db: str) -> None:
    result = report(db, "--group", "dimension", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert {r["dimension"]: r["quantity"] for r in rows} == {"users": "6.5", "storage_gb": "7"}
    assert list(rows[0]) == ["period", "dimension", "quantity", "records"]


def test_the_table_aligns_numbers_and_shows_a_total(db: str) -> None:
    result = report(db, "--group", "dimension", "--by", "month")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"{SAAS}: usage by month from ")
    assert lines[1].split() == ["period", "dimension", "quantity", "records"]
    body = {line.split()[1]: line for line in lines[2:4]}
    assert body["storage_gb"].split()[2:] == ["7", "1"]
    assert body["users"].split()[2:] == ["6.5", "2"]
    # the decimal points line up
    assert body["users"].index(".") == body["storage_gb"].index("7") + 1
    assert lines[4].split() == ["total", "13.5", "3"]


def test_a_range_without_usage_says_so(db: str) -> None:
    result = report(db, "--from", "2020-01-01", "--to", "2020-02-01")
    assert result.exit_code == 0
    assert "no usage in this range" in result.output
    assert "from 2020-01-01T00:00:00Z to 2020-02-01T00:00:00Z" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--group", "customer,colour"), "group by customer, dimension or tag:KEY, not 'colour'"),
        (("--group", "dimension,dimension"), "a group is named twice"),
        (("--from", "yesterday"), "not an ISO 8601 time: 'yesterday'"),
        (("--from", "2026-02-01", "--to", "2026-01-01"), "start must be before its end"),
    ],
)
def test_bad_options_are_one_line_and_exit_1(db: str, args: tuple[str, ...], message: str) -> None:
    result = report(db, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_an_unknown_product_is_an_error(db: str) -> None:
    result = run("usage", "report", "--database", db, "--product", "nope")
    assert result.exit_code == 1
    assert "no product 'nope'" in result.output


def test_an_unknown_period_is_refused_by_the_options(db: str) -> None:
    result = report(db, "--by", "week")
    assert result.exit_code == 2


def test_usage_check_finds_usage_billed_twice_and_missed_hours(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'check.db'}"
    t0 = datetime(2026, 11, 15, 0, 10, tzinfo=UTC)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(make_catalog()))
    assert run("clock", "set", "--database", url, t0.isoformat()).exit_code == 0
    assert run("catalog", "apply", "--database", url, str(path)).exit_code == 0  # subscribed at t0
    store = SqliteStore(tmp_path / "check.db")
    service = MeteringService(store, FixedClock(t0 + timedelta(hours=5)))
    hour = t0.replace(minute=0)
    sent = [
        record(hour + timedelta(hours=1, minutes=5)),
        record(hour + timedelta(hours=2, minutes=5)),
        record(hour + timedelta(hours=4, minutes=5), dimension="storage_gb"),
    ]
    outcome = service.batch_meter_usage(caller("seller"), SAAS, sent)
    by_license = [record(hour + timedelta(hours=2, minutes=6), license_arn=BUYER_LICENSE)]
    outcome2 = service.batch_meter_usage(caller("seller"), None, by_license)
    statuses = [r.status for r in (*outcome.results, *outcome2.results)]
    assert statuses == ["Success"] * 4
    store.close()
    assert (
        run("clock", "set", "--database", url, (t0 + timedelta(hours=5)).isoformat()).exit_code == 0
    )

    result = run(
        "usage",
        "check",
        "--database",
        url,
        "--product",
        SAAS,
        "--from",
        "2026-11-15",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    mine = [w for w in json.loads(result.output) if w["customer_aws_account_id"] == BUYER]
    assert [(w["kind"], w["hour"], w["hours"], w["dimension"]) for w in mine] == [
        ("billed-twice", "2026-11-15T02:00:00Z", 1, "users"),
        ("missed-hours", "2026-11-15T03:00:00Z", 1, None),
    ]
    others = [w for w in json.loads(result.output) if w["customer_aws_account_id"] != BUYER]
    # the other subscribers sent nothing in the four closed hours since they subscribed
    assert others and all(
        (w["kind"], w["hour"], w["hours"]) == ("missed-hours", "2026-11-15T01:00:00Z", 4)
        for w in others
    )
    table = run(
        "usage", "check", "--database", url, "--product", SAAS, "--from", "2026-11-15", "--strict"
    )
    assert table.exit_code == 1
    assert "billed-twice: 444455556666 was metered for users in the hour of " in table.output
    quiet = run(
        "usage",
        "check",
        "--database",
        url,
        "--product",
        SAAS,
        "--from",
        "2026-11-15T04:00",
        "--to",
        "2026-11-15T04:30",
    )
    assert [line for line in quiet.output.splitlines() if BUYER in line] == []


def test_usage_check_finds_records_aws_would_have_refused(tmp_path: Path) -> None:
    """Under clock travel the service accepts records by its own clock; those outside
    their window on the real clock are marked as stored, and `usage check` names them."""
    url = f"sqlite:///{tmp_path / 'late.db'}"
    real = datetime(2026, 11, 15, 12, 30, tzinfo=UTC)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(make_catalog()))
    assert run("clock", "set", "--database", url, "2026-11-01T00:00:00Z").exit_code == 0
    assert run("catalog", "apply", "--database", url, str(path)).exit_code == 0
    store = SqliteStore(tmp_path / "late.db")
    travelled = OffsetClock(FixedClock(real), timedelta(hours=-2))  # 10:30 by its clock
    service = MeteringService(store, travelled)
    batch = service.batch_meter_usage(
        caller("seller"),
        SAAS,
        [
            record(real - timedelta(hours=3)),
            record(real - timedelta(hours=25), dimension="storage_gb"),
        ],
    )
    assert [r.status for r in batch.results] == ["Success", "Success"]
    meter_ok = service.meter_usage(caller("buyer"), meter(real - timedelta(hours=5)))
    meter_late = service.meter_usage(
        caller("buyer"), meter(real - timedelta(hours=7), dimension="gb")
    )
    # travelled forward: a record ahead of the real clock is early, not late
    ahead = MeteringService(store, OffsetClock(FixedClock(real), timedelta(hours=2)))
    meter_early = ahead.meter_usage(caller("buyer"), meter(real + timedelta(hours=1)))
    by_id = {r.record_id: r for r in store.iter_records()}
    assert [by_id[i].accepted_late for i in (meter_ok, meter_late, meter_early)] == [
        False,
        True,
        False,
    ]
    assert sorted(r.accepted_late for r in by_id.values() if r.product_code == SAAS) == [
        False,
        True,
    ]
    store.close()

    for product, dimension, hour in (
        (SAAS, "storage_gb", "2026-11-14T11:00:00Z"),
        (AMI, "gb", "2026-11-15T05:00:00Z"),
    ):
        result = run(
            "usage", "check", "--database", url, "--product", product, "--from", "2026-11-14",
            "--to", "2026-11-16", "--format", "json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        late = [w for w in json.loads(result.output) if w["kind"] == "late"]
        assert [(w["hour"], w["dimension"], w["customer_aws_account_id"]) for w in late] == [
            (hour, dimension, BUYER)
        ]
        assert "AWS would have refused it" in late[0]["message"]
        # the same warnings in the report, when asked for
        common = ["--product", product, "--from", "2026-11-14", "--to", "2026-11-16"]
        document = run("usage", "report", "--database", url, *common, "--format", "json")
        assert "warnings" not in json.loads(document.output)
        asked = run("usage", "report", "--database", url, *common, "--format", "json", "--warnings")
        assert json.loads(asked.output)["warnings"] == json.loads(result.output)
        table = run("usage", "report", "--database", url, *common, "--warnings")
        assert table.exit_code == 0, table.output
        assert f"late: {late[0]['message']}" in table.output.splitlines()


def test_the_invoice_preview_prices_each_customer_s_month(db: str) -> None:
    result = run(
        "usage",
        "invoice",
        "--database",
        db,
        "--product",
        SAAS,
        "--month",
        "2026-11",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    preview = json.loads(result.output)
    assert preview["month"] == "2026-11"
    [customer] = preview["customers"]
    assert customer["customer_aws_account_id"] == BUYER
    assert customer["lines"] == [
        {
            "dimension": "storage_gb",
            "quantity": "7",
            "price_per_unit": None,
            "currency": None,
            "amount": None,
        },
        {
            "dimension": "users",
            "quantity": "6.5",
            "price_per_unit": "0.125",
            "currency": "USD",
            "amount": "0.8125",
        },
    ]
    assert customer["totals"] == {"USD": "0.8125"}
    assert preview["totals"] == {"USD": "0.8125"}
    table = run("usage", "invoice", "--database", db, "--product", SAAS, "--month", "2026-11")
    assert table.exit_code == 0
    assert table.output.splitlines()[-1].split() == ["all", "customers", "total", "0.8125", "USD"]
    empty = run("usage", "invoice", "--database", db, "--product", SAAS, "--month", "2026-10")
    assert "no usage in this month" in empty.output
    bad = run("usage", "invoice", "--database", db, "--product", SAAS, "--month", "November")
    assert bad.exit_code == 1
    assert "a month is YYYY-MM" in bad.output


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"seats": {"price_per_unit": "1", "currency": "USD"}}, ".prices.seats: not a dimension"),
        ({"users": {"price_per_unit": "-1", "currency": "USD"}}, ".prices.users.price_per_unit"),
        ({"users": {"price_per_unit": "1", "currency": "usd"}}, ".prices.users.currency"),
        ({"users": {"price_per_unit": "1"}}, ".prices.users.currency"),
        ({"users": {"price_per_unit": "1", "currency": "USD", "tax": 1}}, "unknown field"),
        (["users"], ".prices: a mapping"),
    ],
)
def test_bad_prices_are_refused_with_their_field(
    tmp_path: Path, prices: object, message: str
) -> None:
    catalog = make_catalog()
    catalog["products"][0]["prices"] = prices
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    result = run("catalog", "apply", "--database", f"sqlite:///{tmp_path / 'p.db'}", str(path))
    assert result.exit_code == 1
    assert message in result.output
