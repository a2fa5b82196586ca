from datetime import timedelta

import pytest

from marketmeter.domain.errors import (
    CustomerNotEntitled,
    DryRunSucceeded,
    DuplicateRequest,
    IdempotencyConflict,
    InvalidEndpointRegion,
    InvalidProductCode,
    InvalidTag,
    InvalidUsageAllocations,
    InvalidUsageDimension,
    TimestampOutOfBounds,
)
from marketmeter.domain.service import MeteringService
from tests.conftest import NOW
from tests.factories import AMI, BUYER, CONTAINER, SAAS, alloc, caller, meter

AT = NOW - timedelta(minutes=20)


def stored(service: MeteringService) -> list[dict]:  # type: ignore[type-arg]
    return list(service.export_records())


def test_a_buyer_meters_an_hour_of_usage(service: MeteringService) -> None:
    record_id = service.meter_usage(caller("buyer"), meter(AT, quantity=4))
    [row] = stored(service)
    assert row["MeteringRecordId"] == record_id
    assert row["Operation"] == "MeterUsage"
    assert row["CustomerAWSAccountId"] == BUYER
    assert row["Quantity"] == 4


def test_requests_identical_after_flooring_return_the_same_id(service: MeteringService) -> None:
    first = service.meter_usage(caller("buyer"), meter(AT.replace(minute=1), quantity=4))
    again = service.meter_usage(caller("buyer"), meter(AT.replace(minute=29), quantity="4.0"))
    assert again == first
    assert len(stored(service)) == 1


def test_same_hour_different_quantity_is_a_duplicate_request(service: MeteringService) -> None:
    service.meter_usage(caller("buyer"), meter(AT, quantity=4))
    with pytest.raises(DuplicateRequest, match="quantity 4"):
        service.meter_usage(caller("buyer"), meter(AT, quantity=5))
    assert [r["Quantity"] for r in stored(service)] == [4]


def test_the_next_hour_is_a_new_record(service: MeteringService) -> None:
    a = service.meter_usage(caller("buyer"), meter(AT - timedelta(hours=1), quantity=4))
    b = service.meter_usage(caller("buyer"), meter(AT, quantity=5))
    assert a != b
    assert len(stored(service)) == 2


def test_each_resource_has_its_own_hourly_slot(service: MeteringService) -> None:
    a = service.meter_usage(caller("buyer"), meter(AT, quantity=4))
    b = service.meter_usage(caller("buyer_task2"), meter(AT, quantity=5))
    assert a != b
    assert len(stored(service)) == 2


def test_each_dimension_has_its_own_hourly_slot(service: MeteringService) -> None:
    service.meter_usage(caller("buyer"), meter(AT, quantity=4))
    service.meter_usage(caller("buyer"), meter(AT, dimension="gb", quantity=5))
    assert len(stored(service)) == 2


def test_client_token_replay_returns_the_first_answer(service: MeteringService) -> None:
    first = service.meter_usage(caller("buyer"), meter(AT, quantity=4, client_token="t-1"))
    again = service.meter_usage(caller("buyer"), meter(AT, quantity=4, client_token="t-1"))
    assert again == first


def test_client_token_reused_with_other_parameters_is_a_conflict(service: MeteringService) -> None:
    service.meter_usage(caller("buyer"), meter(AT, quantity=4, client_token="t-1"))
    with pytest.raises(IdempotencyConflict, match="t-1"):
        service.meter_usage(
            caller("buyer"), meter(AT, dimension="gb", quantity=4, client_token="t-1")
        )
    assert len(stored(service)) == 1


def test_client_token_reused_by_another_resource_is_a_conflict(service: MeteringService) -> None:
    service.meter_usage(caller("buyer"), meter(AT, quantity=4, client_token="t-1"))
    with pytest.raises(IdempotencyConflict):
        service.meter_usage(caller("buyer_task2"), meter(AT, quantity=4, client_token="t-1"))


def test_a_failed_request_does_not_use_up_its_client_token(service: MeteringService) -> None:
    service.meter_usage(caller("buyer"), meter(AT, quantity=4))
    with pytest.raises(DuplicateRequest):
        service.meter_usage(caller("buyer"), meter(AT, quantity=5, client_token="t-2"))
    # The token was not stored with the failed request: it can serve another request.
    record_id = service.meter_usage(caller("buyer"), meter(AT, dimension="gb", client_token="t-2"))
    assert record_id in {r["MeteringRecordId"] for r in stored(service)}


def test_dry_run_that_would_succeed_stores_nothing(service: MeteringService) -> None:
    with pytest.raises(DryRunSucceeded):
        service.meter_usage(caller("buyer"), meter(AT, quantity=4, dry_run=True, client_token="d"))
    assert stored(service) == []
    # Neither the slot nor the token was taken.
    service.meter_usage(caller("buyer"), meter(AT, quantity=5, client_token="d"))


def test_dry_run_of_a_failing_request_gives_the_real_error(service: MeteringService) -> None:
    service.meter_usage(caller("buyer"), meter(AT, quantity=4))
    with pytest.raises(DuplicateRequest):
        service.meter_usage(caller("buyer"), meter(AT, quantity=5, dry_run=True))
    with pytest.raises(InvalidUsageDimension):
        service.meter_usage(caller("buyer"), meter(AT, dimension="nope", dry_run=True))
    with pytest.raises(CustomerNotEntitled):
        service.meter_usage(caller("stranger"), meter(AT, dry_run=True))


def test_unknown_product_and_saas_product_are_invalid_product_codes(
    service: MeteringService,
) -> None:
    with pytest.raises(InvalidProductCode, match="no product"):
        service.meter_usage(caller("buyer"), meter(AT, product="nope"))
    with pytest.raises(InvalidProductCode, match="BatchMeterUsage"):
        service.meter_usage(caller("buyer"), meter(AT, product=SAAS, dimension="users"))


def test_container_products_are_metered_too(service: MeteringService) -> None:
    service.meter_usage(caller("buyer"), meter(AT, product=CONTAINER, dimension="tasks"))
    assert stored(service)[0]["ProductCode"] == CONTAINER


def test_a_buyer_without_subscription_is_not_entitled(service: MeteringService) -> None:
    with pytest.raises(CustomerNotEntitled, match="no active subscription"):
        service.meter_usage(caller("stranger"), meter(AT))
    assert stored(service) == []


def test_a_cancelled_buyer_is_not_entitled(service: MeteringService) -> None:
    service.cancel_subscription(AMI, BUYER)
    with pytest.raises(CustomerNotEntitled):
        service.meter_usage(caller("buyer"), meter(AT))


def test_the_seller_meters_in_preview_mode_without_subscription(service: MeteringService) -> None:
    service.meter_usage(caller("seller"), meter(AT))
    [row] = stored(service)
    assert row["CustomerIdentifier"] is None


def test_a_resource_in_another_region_is_refused(service: MeteringService) -> None:
    pinned = caller("buyer", signed_in="eu-west-1", region="us-east-1")
    with pytest.raises(InvalidEndpointRegion, match="us-east-1"):
        service.meter_usage(pinned, meter(AT))
    service.meter_usage(caller("buyer", signed_in="eu-west-1"), meter(AT))  # not pinned: any Region


def test_the_window_is_six_hours(service: MeteringService) -> None:
    service.meter_usage(caller("buyer"), meter(NOW - timedelta(hours=5, minutes=59)))
    with pytest.raises(TimestampOutOfBounds, match="6 hours"):
        service.meter_usage(caller("buyer"), meter(NOW - timedelta(hours=6), dimension="gb"))


def test_allocations_and_tags_are_checked(service: MeteringService) -> None:
    with pytest.raises(InvalidUsageAllocations):
        service.meter_usage(caller("buyer"), meter(AT, quantity=3, allocations=(alloc(2, a="x"),)))
    with pytest.raises(InvalidTag):
        service.meter_usage(
            caller("buyer"), meter(AT, quantity=1, allocations=(alloc(1, **{"b!": "x"}),))
        )
    assert stored(service) == []


def test_a_token_reused_for_its_own_slot_with_another_quantity_is_a_conflict(
    service: MeteringService,
) -> None:
    # The token decides before the slot: IdempotencyConflict, not DuplicateRequest.
    service.meter_usage(caller("buyer"), meter(AT, quantity=4, client_token="t-3"))
    with pytest.raises(IdempotencyConflict, match="t-3"):
        service.meter_usage(caller("buyer"), meter(AT, quantity=5, client_token="t-3"))
    assert [r["Quantity"] for r in stored(service)] == [4]


def test_a_dry_run_replaying_a_token_is_judged_by_the_token(service: MeteringService) -> None:
    service.meter_usage(caller("buyer"), meter(AT, quantity=4, client_token="t-4"))
    with pytest.raises(DryRunSucceeded):
        service.meter_usage(
            caller("buyer"), meter(AT, quantity=4, dry_run=True, client_token="t-4")
        )
    with pytest.raises(IdempotencyConflict):
        service.meter_usage(
            caller("buyer"), meter(AT, dimension="gb", dry_run=True, client_token="t-4")
        )
    assert len(stored(service)) == 1


def test_a_second_token_for_the_same_usage_gets_the_first_record_and_is_kept(
    service: MeteringService,
) -> None:
    first = service.meter_usage(caller("buyer"), meter(AT, quantity=4, client_token="t-5"))
    second = service.meter_usage(caller("buyer"), meter(AT, quantity=4, client_token="t-6"))
    assert second == first
    # t-6 now stands for that request: replayed, the same id; reused, a conflict.
    assert service.meter_usage(caller("buyer"), meter(AT, quantity=4, client_token="t-6")) == first
    with pytest.raises(IdempotencyConflict):
        service.meter_usage(caller("buyer"), meter(AT, dimension="gb", client_token="t-6"))
    assert len(stored(service)) == 1
