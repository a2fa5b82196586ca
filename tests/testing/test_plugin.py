"""The pytest plugin as a seller's suite meets it: installed with the package, its fixtures
available without a conftest, a catalog from the command line or the ini file, a mock per
test, a server per session reset for each test, and nothing started unless asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

CATALOG = Path(__file__).with_name("catalog.yaml")

SELLER_TESTS = """
from datetime import UTC, datetime, timedelta

import boto3

SAAS = "kitsaas000000000000000001"
HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
RECORD = {"Timestamp": HOUR, "CustomerAWSAccountId": "444455556666", "Dimension": "users",
          "Quantity": 2}


def test_first(marketplace):
    marketplace.subscribe(SAAS, "444455556666")
    client = boto3.client("meteringmarketplace", region_name="us-east-1")
    assert client.batch_meter_usage(ProductCode=SAAS, UsageRecords=[RECORD])["Results"]
    marketplace.assert_metered(customer="444455556666", dimension="users", hour=HOUR, quantity=2)


def test_second_starts_afresh(marketplace):
    assert marketplace.records() == []


def test_server_first(marketmeter_server):
    marketmeter_server.handle.subscribe(SAAS, "444455556666")
    client = marketmeter_server.client()
    out = client.batch_meter_usage(ProductCode=SAAS, UsageRecords=[RECORD])
    assert out["Results"][0]["Status"] == "Success"
    marketmeter_server.handle.clock.advance("3h")
    marketmeter_server.handle.faults.set(throttle=True)


def test_server_second_is_reset(marketmeter_server):
    handle = marketmeter_server.handle
    assert handle.records() == []
    assert abs(handle.clock.now() - datetime.now(UTC)) < timedelta(minutes=1)
    out = marketmeter_server.client().batch_meter_usage(ProductCode=SAAS, UsageRecords=[RECORD])
    assert out["Results"][0]["Status"] == "CustomerNotSubscribed"  # no faults, no buyer
"""


def test_the_fixtures_with_the_catalog_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seller=SELLER_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--marketmeter-catalog={CATALOG}", "-q"
    )
    result.assert_outcomes(passed=4)


def test_the_server_fixture_on_postgresql(pytester: pytest.Pytester, postgres: Any) -> None:
    database = postgres.create_database()
    pytester.makepyfile(test_seller=SELLER_TESTS)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-q",
        f"--marketmeter-catalog={CATALOG}",
        f"--marketmeter-database={database}",
        "-k",
        "server",
    )
    result.assert_outcomes(passed=2)
    with psycopg.connect(database) as conn:  # it was that database the server used
        assert conn.execute("SELECT count(*) FROM products").fetchone() == (3,)


def test_the_catalog_from_the_ini_file(pytester: pytest.Pytester) -> None:
    (pytester.path / "catalog.yaml").write_text(CATALOG.read_text())
    pytester.makeini("[pytest]\nmarketmeter_catalog = catalog.yaml\n")
    pytester.makepyfile(test_seller=SELLER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-k", "not server")
    result.assert_outcomes(passed=2)


def test_the_plugin_is_inert_unless_asked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
import sys

def test_nothing_of_marketmeter_was_started():
    started = [m for m in ("marketmeter.testing.server", "marketmeter.testing.inprocess",
                           "marketmeter.app", "marketmeter.store") if m in sys.modules]
    assert started == []  # no server, no mock, not even a store
    assert "marketmeter.testing.plugin" in sys.modules  # yet the plugin is loaded
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--fixtures")
    result.stdout.fnmatch_lines(["*marketmeter_catalog*", "*marketplace*", "*marketmeter_server*"])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)


def test_a_bad_catalog_fails_the_test_with_its_place(pytester: pytest.Pytester) -> None:
    (pytester.path / "catalog.yaml").write_text("products:\n  - product_code: p1\n    type: x\n")
    pytester.makepyfile(test_one="def test_one(marketplace):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-q", "--marketmeter-catalog=catalog.yaml"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*catalog.yaml:3: products[[]0[]].type: one of saas*"])
