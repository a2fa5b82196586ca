from datetime import timedelta

import pytest

from marketmeter.clock import FixedClock
from marketmeter.domain.errors import (
    InvalidCustomerIdentifier,
    InvalidLicense,
    InvalidProductCode,
    InvalidTag,
    InvalidUsageAllocations,
    InvalidUsageDimension,
    TimestampOutOfBounds,
    ValidationFailed,
)
from marketmeter.domain.service import MeteringService
from tests.conftest import NOW
from tests.factories import (
    AMI,
    BUYER,
    BUYER2,
    BUYER2_IDENTIFIER,
    BUYER2_OTHER_SAAS_LICENSE,
    BUYER_CONCURRENT_LICENSE_A,
    BUYER_CONCURRENT_LICENSE_B,
    BUYER_IDENTIFIER,
    BUYER_LICENSE,
    OTHER_SAAS,
    SAAS,
    SAAS_CONCURRENT,
    STRANGER,
    alloc,
    caller,
    micros,
    record,
)

AT = NOW - timedelta(minutes=20)  # 12:10, in the hour starting 12:00


def batch(service: MeteringService, *records, product: str | None = SAAS, who: str = "seller"):  # type: ignore[no-untyped-def]
    return service.batch_meter_usage(caller(who), product, list(records))


def stored(service: MeteringService) -> list[dict]:  # type: ignore[type-arg]
    return list(service.export_records())


def test_a_new_record_succeeds_and_is_stored(service: MeteringService) -> None:
    out = batch(service, record(AT, quantity=5))
    [result] = out.results
    assert result.status == "Success"
    [row] = stored(service)
    assert row["MeteringRecordId"] == result.metering_record_id
    assert row["CustomerAWSAccountId"] == BUYER
    assert row["CustomerIdentifier"] == BUYER_IDENTIFIER  # resolved from the subscription
    assert row["LicenseArn"] == BUYER_LICENSE
    assert row["Quantity"] == 5
    assert row["Operation"] == "BatchMeterUsage"


def test_an_identical_retry_returns_the_original_id(service: MeteringService) -> None:
    first = batch(service, record(AT, quantity=5)).results[0]
    again = batch(service, record(AT + timedelta(minutes=15), quantity=5)).results[0]
    assert again.status == "Success"
    assert again.metering_record_id == first.metering_record_id
    assert len(stored(service)) == 1


def test_a_different_quantity_in_the_same_hour_is_a_duplicate_record(
    service: MeteringService,
) -> None:
    batch(service, record(AT, quantity=5))
    again = batch(service, record(AT, quantity=6)).results[0]
    assert again.status == "DuplicateRecord"
    assert again.metering_record_id is None
    [row] = stored(service)
    assert row["Quantity"] == 5  # the original is kept


def test_quantities_are_compared_by_value(service: MeteringService) -> None:
    first = batch(service, record(AT, quantity=17)).results[0]
    for same in ("17", "17.0", "17.000000"):
        again = batch(service, record(AT, quantity=same)).results[0]
        assert again.status == "Success"
        assert again.metering_record_id == first.metering_record_id
    assert len(stored(service)) == 1


def test_decimal_quantities_are_kept_exactly(service: MeteringService) -> None:
    batch(
        service,
        record(AT, quantity="0.000001"),
        record(AT, dimension="storage_gb", quantity="9999999999.999999"),
    )
    rows = {r["Dimension"]: r for r in stored(service)}
    assert rows["users"]["QuantityAsDecimal"] == "0.000001"
    assert rows["storage_gb"]["QuantityAsDecimal"] == "9999999999.999999"
    assert micros(rows["storage_gb"]["QuantityAsDecimal"]) == 9_999_999_999_999_999


def test_the_hour_boundary_separates_slots(service: MeteringService) -> None:
    end_of_hour = NOW.replace(minute=59, second=59, microsecond=999000) - timedelta(hours=1)
    next_hour = end_of_hour + timedelta(milliseconds=1)
    out = batch(service, record(end_of_hour, quantity=1), record(next_hour, quantity=2))
    assert [r.status for r in out.results] == ["Success", "Success"]
    assert len(stored(service)) == 2


def test_within_one_batch_the_rule_applies_in_input_order(service: MeteringService) -> None:
    out = batch(
        service,
        record(AT, quantity=1),
        record(AT, quantity=1),
        record(AT, quantity=2),
        record(AT, dimension="storage_gb", quantity=3),
    )
    statuses = [r.status for r in out.results]
    assert statuses == ["Success", "Success", "DuplicateRecord", "Success"]
    assert out.results[0].metering_record_id == out.results[1].metering_record_id
    assert len(stored(service)) == 2


def test_customer_identifier_and_account_id_name_the_same_customer(
    service: MeteringService,
) -> None:
    first = batch(service, record(AT, customer=BUYER_IDENTIFIER, quantity=3)).results[0]
    again = batch(service, record(AT, account=BUYER, quantity=3)).results[0]
    assert again.metering_record_id == first.metering_record_id


def test_unknown_and_unsubscribed_customers_get_customer_not_subscribed(
    service: MeteringService,
) -> None:
    out = batch(
        service,
        record(AT, customer="nobody-at-all"),
        record(AT, account=STRANGER),
        record(AT, account=BUYER2),
    )
    assert [r.status for r in out.results] == [
        "CustomerNotSubscribed",
        "CustomerNotSubscribed",
        "Success",
    ]
    assert len(stored(service)) == 1


def test_a_cancelled_customer_gets_customer_not_subscribed(service: MeteringService) -> None:
    service.cancel_subscription(SAAS, BUYER2)
    out = batch(service, record(AT, customer=BUYER2_IDENTIFIER), record(AT, account=BUYER))
    assert [r.status for r in out.results] == ["CustomerNotSubscribed", "Success"]
    assert [r["CustomerAWSAccountId"] for r in stored(service)] == [BUYER]


def test_one_record_out_of_the_window_fails_the_whole_batch(service: MeteringService) -> None:
    with pytest.raises(TimestampOutOfBounds):
        batch(service, record(AT), record(NOW - timedelta(hours=24), dimension="storage_gb"))
    assert stored(service) == []


def test_the_batch_window_is_24_hours(service: MeteringService) -> None:
    out = batch(service, record(NOW - timedelta(hours=23, minutes=59)))
    assert out.results[0].status == "Success"


def test_month_end_grace_period(store, clock: FixedClock) -> None:  # type: ignore[no-untyped-def]
    from marketmeter.domain.catalog_file import parse_catalog
    from tests.factories import make_catalog

    svc = MeteringService(store, clock)
    svc.apply_catalog(parse_catalog(make_catalog()))
    last_evening = NOW.replace(month=3, day=31, hour=22)
    clock.set(NOW.replace(month=4, day=1, hour=5, minute=59))
    assert batch(svc, record(last_evening)).results[0].status == "Success"
    clock.set(NOW.replace(month=4, day=1, hour=6, minute=0))
    with pytest.raises(TimestampOutOfBounds, match="March 2026"):
        batch(svc, record(last_evening, dimension="storage_gb"))


def test_a_future_record_fails_the_batch(service: MeteringService) -> None:
    with pytest.raises(TimestampOutOfBounds, match="5 minutes"):
        batch(service, record(NOW + timedelta(minutes=6)))
    assert stored(service) == []


def test_an_unknown_dimension_fails_the_batch(service: MeteringService) -> None:
    with pytest.raises(InvalidUsageDimension, match="'cpu'"):
        batch(service, record(AT), record(AT, dimension="cpu"))
    assert stored(service) == []


def test_another_sellers_product_is_an_invalid_product_code(service: MeteringService) -> None:
    with pytest.raises(InvalidProductCode):
        batch(service, record(AT, account=BUYER2), product=OTHER_SAAS)
    with pytest.raises(InvalidProductCode):
        batch(service, record(AT), product="no-such-product")
    with pytest.raises(InvalidProductCode):
        batch(service, record(AT), who="buyer")  # a buyer is not the seller
    assert stored(service) == []


def test_a_non_saas_product_is_refused(service: MeteringService) -> None:
    with pytest.raises(InvalidProductCode, match="MeterUsage"):
        batch(service, record(AT, dimension="vcpu_hours"), product=AMI)


def test_tags_and_allocations_are_checked_for_every_record(service: MeteringService) -> None:
    six = {f"k{i}": "v" for i in range(6)}
    with pytest.raises(InvalidTag):
        batch(
            service, record(AT), record(AT, dimension="storage_gb", allocations=(alloc(1, **six),))
        )
    with pytest.raises(InvalidUsageAllocations):
        batch(service, record(AT, quantity=3, allocations=(alloc(1, team="a"),)))
    assert stored(service) == []


def test_allocations_are_stored_as_sent(service: MeteringService) -> None:
    batch(
        service,
        record(AT, quantity="3.5", allocations=(alloc("1.5", team="a"), alloc("2.0", team="b"))),
    )
    [row] = stored(service)
    assert row["UsageAllocations"] == [
        {"AllocatedUsageQuantityAsDecimal": "1.5", "Tags": [{"Key": "team", "Value": "a"}]},
        {"AllocatedUsageQuantityAsDecimal": "2.0", "Tags": [{"Key": "team", "Value": "b"}]},
    ]


def test_retry_with_other_allocations_is_a_duplicate(service: MeteringService) -> None:
    batch(service, record(AT, quantity=2, allocations=(alloc(1, team="a"), alloc(1, team="b"))))
    reordered = batch(
        service, record(AT, quantity=2, allocations=(alloc(1, team="b"), alloc(1, team="a")))
    )
    assert reordered.results[0].status == "Success"
    changed = batch(service, record(AT, quantity=2, allocations=(alloc(2, team="a"),)))
    assert changed.results[0].status == "DuplicateRecord"


class TestLicenseArn:
    def test_records_by_license_succeed_without_a_product_code(
        self, service: MeteringService
    ) -> None:
        out = batch(service, record(AT, license_arn=BUYER_LICENSE), product=None)
        assert out.results[0].status == "Success"
        [row] = stored(service)
        assert row["ProductCode"] == SAAS
        assert row["LicenseArn"] == BUYER_LICENSE

    def test_product_code_and_license_slots_are_billed_separately(
        self, service: MeteringService
    ) -> None:
        by_code = batch(service, record(AT, quantity=4)).results[0]
        by_license = batch(
            service, record(AT, quantity=4, license_arn=BUYER_LICENSE), product=None
        ).results[0]
        assert by_code.status == by_license.status == "Success"
        assert by_code.metering_record_id != by_license.metering_record_id
        assert len(stored(service)) == 2

    def test_concurrent_agreements_each_have_their_own_slot(self, service: MeteringService) -> None:
        out = batch(
            service,
            record(AT, license_arn=BUYER_CONCURRENT_LICENSE_A),
            record(AT, license_arn=BUYER_CONCURRENT_LICENSE_B, quantity=2),
            product=None,
        )
        assert [r.status for r in out.results] == ["Success", "Success"]

    def test_a_license_of_another_customer_is_invalid(self, service: MeteringService) -> None:
        with pytest.raises(InvalidLicense, match="not granted to account"):
            batch(service, record(AT, account=BUYER2, license_arn=BUYER_LICENSE), product=None)
        assert stored(service) == []

    def test_an_unknown_license_is_invalid(self, service: MeteringService) -> None:
        unknown = BUYER_LICENSE[:-1] + "f"
        with pytest.raises(InvalidLicense):
            batch(service, record(AT, license_arn=unknown), product=None)

    def test_another_sellers_license_is_invalid(self, service: MeteringService) -> None:
        with pytest.raises(InvalidLicense):
            batch(
                service,
                record(AT, account=BUYER2, license_arn=BUYER2_OTHER_SAAS_LICENSE),
                product=None,
            )

    def test_licenses_of_two_products_in_one_request_are_refused(
        self, service: MeteringService
    ) -> None:
        with pytest.raises(ValidationFailed, match="one product"):
            batch(
                service,
                record(AT, license_arn=BUYER_LICENSE),
                record(AT, license_arn=BUYER_CONCURRENT_LICENSE_A),
                product=None,
            )
        assert stored(service) == []

    def test_a_cancelled_license_gets_customer_not_subscribed(
        self, service: MeteringService
    ) -> None:
        service.cancel_subscription(SAAS, BUYER)
        out = batch(service, record(AT, license_arn=BUYER_LICENSE), product=None)
        assert out.results[0].status == "CustomerNotSubscribed"


def test_concurrent_agreement_products_refuse_customer_identifier(service: MeteringService) -> None:
    with pytest.raises(InvalidCustomerIdentifier, match="concurrent agreements"):
        batch(service, record(AT, customer=BUYER_IDENTIFIER), product=SAAS_CONCURRENT)
    ok = batch(service, record(AT, account=BUYER), product=SAAS_CONCURRENT)
    assert ok.results[0].status == "Success"


def test_an_empty_batch_succeeds_with_no_results(service: MeteringService) -> None:
    out = batch(service)
    assert out.results == ()
    assert out.unprocessed == ()
