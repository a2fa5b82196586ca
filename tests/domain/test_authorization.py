from datetime import timedelta

import pytest

from marketmeter.clock import FixedClock
from marketmeter.domain.catalog_file import parse_catalog
from marketmeter.domain.errors import AccessDenied, DisabledApi, Throttled, Unauthorized
from marketmeter.domain.service import MeteringService, ServiceSettings
from marketmeter.store.sqlite import SqliteStore
from tests.conftest import NOW
from tests.factories import SAAS, caller, make_catalog, meter, record

AT = NOW - timedelta(minutes=5)


def test_a_key_without_the_action_is_denied(service: MeteringService) -> None:
    limited = caller("seller", actions=frozenset({"ResolveCustomer"}))
    with pytest.raises(
        AccessDenied, match="not authorized to perform: aws-marketplace:BatchMeterUsage"
    ):
        service.batch_meter_usage(limited, SAAS, [record(AT)])
    assert list(service.export_records()) == []


def test_dry_run_without_the_action_is_unauthorized(service: MeteringService) -> None:
    limited = caller("buyer", actions=frozenset({"RegisterUsage"}))
    with pytest.raises(Unauthorized):
        service.meter_usage(limited, meter(AT, dry_run=True))
    with pytest.raises(AccessDenied):
        service.meter_usage(limited, meter(AT))


def _service(store: SqliteStore, clock: FixedClock, settings: ServiceSettings) -> MeteringService:
    svc = MeteringService(store, clock, settings)
    svc.apply_catalog(parse_catalog(make_catalog()))
    return svc


def test_apis_are_disabled_outside_the_enabled_regions(
    store: SqliteStore, clock: FixedClock
) -> None:
    svc = _service(store, clock, ServiceSettings(enabled_regions=frozenset({"us-east-1"})))
    with pytest.raises(DisabledApi, match="eu-west-1"):
        svc.batch_meter_usage(caller("seller", signed_in="eu-west-1"), SAAS, [record(AT)])
    assert (
        svc.batch_meter_usage(caller("seller"), SAAS, [record(AT)]).results[0].status == "Success"
    )
    # MeterUsage has no DisabledApiException in the model: it is not switched off.
    svc.meter_usage(caller("buyer", signed_in="eu-west-1"), meter(AT))


def test_throttling_allows_the_quota_per_second(store: SqliteStore, clock: FixedClock) -> None:
    svc = _service(store, clock, ServiceSettings(throttling=True))
    for i in range(10):
        svc.batch_meter_usage(caller("seller"), SAAS, [record(AT, quantity=i)])
    with pytest.raises(Throttled, match="10 requests per second"):
        svc.batch_meter_usage(caller("seller"), SAAS, [record(AT)])
    # Another Region is another quota; time refills the bucket.
    svc.batch_meter_usage(caller("seller", signed_in="us-west-2"), SAAS, [record(AT)])
    clock.advance(timedelta(milliseconds=100))
    svc.batch_meter_usage(caller("seller"), SAAS, [record(AT)])
    with pytest.raises(Throttled):
        svc.batch_meter_usage(caller("seller"), SAAS, [record(AT)])
