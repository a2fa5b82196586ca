"""A buyer's life in the domain: subscribe, unsubscribe with its final hour, cancel, and
what each change writes to the outbox (against a real SQLite store, a fixed clock)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from marketmeter.clock import FixedClock
from marketmeter.domain.catalog_file import parse_catalog
from marketmeter.domain.errors import CatalogError, NotFound
from marketmeter.domain.notifications import (
    CREATED,
    ENDED,
    LICENSE_DEPROVISIONED,
    LICENSE_UPDATED,
)
from marketmeter.domain.outbox import Delivery
from marketmeter.domain.service import MeteringService
from marketmeter.store.sqlite import SqliteStore
from tests.conftest import NOW
from tests.factories import SAAS, SELLER, caller, record

NEW_BUYER = "123412341234"
SELLER_URL = "https://seller.example"


@pytest.fixture
def listening(service: MeteringService) -> MeteringService:
    """A confirmed SNS subscription of SAAS's subscription topic, and an event target."""
    webhook = service.marketplace.add_webhook(SAAS, f"{SELLER_URL}/sns")
    assert service.marketplace.confirm_webhook(webhook.token) is not None
    service.marketplace.add_event_target(f"{SELLER_URL}/events")
    return service


def outbox(store: SqliteStore) -> list[Delivery]:
    return list(reversed(store.list_deliveries()))  # oldest first


def sns_actions(deliveries: list[Delivery]) -> list[str]:
    return [
        orjson.loads(d.body["Message"])["action"]
        for d in deliveries
        if d.kind == "sns" and d.body["Type"] == "Notification"
    ]


def event_types(deliveries: list[Delivery]) -> list[str]:
    return [d.body["detail-type"] for d in deliveries if d.kind == "eventbridge"]


def since(store: SqliteStore, before: int) -> list[Delivery]:
    return outbox(store)[before:]


def test_subscribe_makes_a_subscription_a_token_and_its_notifications(
    listening: MeteringService, store: SqliteStore
) -> None:
    before = len(outbox(store))
    done = listening.marketplace.subscribe(SAAS, NEW_BUYER)
    assert done.changed
    assert done.subscription.customer_aws_account_id == NEW_BUYER
    assert done.subscription.state(NOW) == "active"
    assert listening.resolve_customer(caller(), done.token.token).license_arn == (
        done.subscription.license_arn
    )
    new = since(store, before)
    assert sns_actions(new) == ["subscribe-success"]
    assert event_types(new) == [CREATED, LICENSE_UPDATED]


def test_subscribing_again_while_active_changes_nothing_but_mints_a_token(
    listening: MeteringService, store: SqliteStore
) -> None:
    first = listening.marketplace.subscribe(SAAS, NEW_BUYER)
    before = len(outbox(store))
    again = listening.marketplace.subscribe(SAAS, NEW_BUYER)
    assert not again.changed
    assert again.subscription == first.subscription
    assert again.token.token != first.token.token
    assert since(store, before) == []


def test_the_final_hour_accepts_usage_until_it_closes(
    listening: MeteringService, store: SqliteStore, clock: FixedClock
) -> None:
    listening.marketplace.subscribe(SAAS, NEW_BUYER)
    before = len(outbox(store))
    ending = listening.marketplace.unsubscribe(SAAS, NEW_BUYER)
    assert ending.state(NOW) == "unsubscribe-pending"
    assert ending.ends_at == NOW + timedelta(hours=1)
    new = since(store, before)
    assert sns_actions(new) == ["unsubscribe-pending", "unsubscribe-success"]
    due = {orjson.loads(d.body["Message"])["action"]: d.due_at for d in new if d.kind == "sns"}
    assert due == {"unsubscribe-pending": NOW, "unsubscribe-success": NOW + timedelta(hours=1)}
    assert event_types(new) == [ENDED, LICENSE_DEPROVISIONED]

    clock.advance(timedelta(minutes=59, seconds=59))
    usage = [record(clock.now() - timedelta(minutes=5), account=NEW_BUYER)]
    assert listening.batch_meter_usage(caller(), SAAS, usage).results[0].status == "Success"
    clock.advance(timedelta(seconds=1))
    usage = [record(clock.now() - timedelta(minutes=4), account=NEW_BUYER, dimension="storage_gb")]
    assert listening.batch_meter_usage(caller(), SAAS, usage).results[0].status == (
        "CustomerNotSubscribed"
    )


def test_subscribing_inside_the_final_hour_calls_the_unsubscribe_off(
    listening: MeteringService, store: SqliteStore, clock: FixedClock
) -> None:
    listening.marketplace.subscribe(SAAS, NEW_BUYER)
    listening.marketplace.unsubscribe(SAAS, NEW_BUYER)
    clock.advance(timedelta(minutes=30))
    before = len(outbox(store))
    back = listening.marketplace.subscribe(SAAS, NEW_BUYER)
    assert back.changed
    assert back.subscription.state(clock.now()) == "active"
    scheduled = [d for d in outbox(store) if d.due_at == NOW + timedelta(hours=1)]
    assert scheduled
    assert {d.status for d in scheduled} == {"cancelled"}
    assert sns_actions(since(store, before)) == ["subscribe-success"]


def test_a_returning_buyer_keeps_the_customer_identifier(
    listening: MeteringService, clock: FixedClock
) -> None:
    first = listening.marketplace.subscribe(SAAS, NEW_BUYER).subscription
    listening.marketplace.cancel(SAAS, NEW_BUYER)
    clock.advance(timedelta(days=3))
    back = listening.marketplace.subscribe(SAAS, NEW_BUYER).subscription
    assert back.customer_identifier == first.customer_identifier
    assert back.state(clock.now()) == "active"


def test_cancel_ends_at_once_with_every_notification_at_once(
    listening: MeteringService, store: SqliteStore
) -> None:
    listening.marketplace.subscribe(SAAS, NEW_BUYER)
    before = len(outbox(store))
    [ended] = listening.marketplace.cancel(SAAS, NEW_BUYER)
    assert ended.state(NOW) == "cancelled"
    new = since(store, before)
    assert sns_actions(new) == ["unsubscribe-pending", "unsubscribe-success"]
    assert event_types(new) == [ENDED, LICENSE_DEPROVISIONED]
    assert {d.due_at for d in new} == {NOW}


def test_the_subscription_message_says_trial_and_offer(
    listening: MeteringService, store: SqliteStore
) -> None:
    before = len(outbox(store))
    listening.marketplace.subscribe(SAAS, NEW_BUYER, free_trial=True, offer_id="offer-xyz")
    [sns] = [d for d in since(store, before) if d.kind == "sns"]
    message = orjson.loads(sns.body["Message"])
    assert message == {
        "action": "subscribe-success",
        "customer-identifier": message["customer-identifier"],
        "product-code": SAAS,
        "offer-identifier": "offer-xyz",
        "isFreeTrialTermPresent": "true",
    }
    before = len(outbox(store))
    listening.marketplace.subscribe(SAAS, "432143214321")
    [plain] = [d for d in since(store, before) if d.kind == "sns"]
    message = orjson.loads(plain.body["Message"])
    assert "offer-identifier" not in message
    assert message["isFreeTrialTermPresent"] == "false"


def test_events_carry_the_agreement_the_license_and_the_parties(
    listening: MeteringService, store: SqliteStore
) -> None:
    before = len(outbox(store))
    s = listening.marketplace.subscribe(SAAS, NEW_BUYER).subscription
    created, license_updated = [d.body for d in since(store, before) if d.kind == "eventbridge"]
    for event in (created, license_updated):
        assert event["source"] == "aws.agreement-marketplace"
        assert event["account"] == SELLER
        assert event["region"] == "us-east-1"
        assert event["resources"] == [f"arn:aws:aws-marketplace::aws:agreement:{s.agreement_id}"]
        detail: dict[str, Any] = event["detail"]
        assert detail["agreement"]["id"] == s.agreement_id
        assert detail["acceptor"] == {"accountId": NEW_BUYER}
        assert detail["proposer"] == {"accountId": SELLER}
        assert detail["catalog"] == "AWSMarketplace"
    assert created["detail"]["agreement"]["intent"] == "NEW"
    assert license_updated["detail"]["license"] == {"arn": s.license_arn}
    assert license_updated["detail"]["product"]["code"] == SAAS


def test_an_unconfirmed_webhook_gets_only_its_confirmation(
    service: MeteringService, store: SqliteStore
) -> None:
    webhook = service.marketplace.add_webhook(SAAS, f"{SELLER_URL}/unconfirmed")
    service.marketplace.subscribe(SAAS, NEW_BUYER)
    mine = [d for d in outbox(store) if d.target_id == webhook.id]
    assert [d.name for d in mine] == ["SubscriptionConfirmation"]
    assert mine[0].body["Token"] == webhook.token


def test_bad_targets_are_refused_and_change_nothing(service: MeteringService) -> None:
    with pytest.raises(CatalogError, match="not an HTTP"):
        service.marketplace.add_webhook(SAAS, "ftp://seller.example/x")
    with pytest.raises(NotFound):
        service.marketplace.add_webhook("noproduct", f"{SELLER_URL}/sns")
    service.marketplace.add_webhook(SAAS, f"{SELLER_URL}/sns")
    with pytest.raises(CatalogError, match="already"):
        service.marketplace.add_webhook(SAAS, f"{SELLER_URL}/sns")
    with pytest.raises(CatalogError, match="header"):
        service.marketplace.add_event_target(f"{SELLER_URL}/e", None, ["no colon"])
    assert len(service.marketplace.webhooks()) == 1
    assert service.marketplace.event_targets() == []


def test_lifecycle_of_unknown_things_is_not_found(service: MeteringService) -> None:
    with pytest.raises(NotFound):
        service.marketplace.subscribe("noproduct", NEW_BUYER)
    with pytest.raises(NotFound):
        service.marketplace.unsubscribe(SAAS, "000000000000")
    with pytest.raises(CatalogError, match="12 digits"):
        service.marketplace.subscribe(SAAS, "12345")


def test_catalog_products_and_subscriptions_carry_pricing_and_entitlements(
    service: MeteringService, store: SqliteStore
) -> None:
    service.apply_catalog(parse_catalog(CONTRACT_CATALOG))
    [s] = store.find_subscriptions("contract01", customer_aws_account_id=NEW_BUYER)
    found = {e.dimension: (e.type, e.value) for e in store.entitlements_of(s.license_arn)}
    assert found == {"seats": ("integer", "25"), "tier": ("string", "gold")}
    assert store.get_product("contract01").pricing == "contract"  # type: ignore[union-attr]


CONTRACT_CATALOG: dict[str, Any] = {
    "products": [
        {
            "product_code": "contract01",
            "seller_account_id": SELLER,
            "dimensions": ["seats", "tier"],
            "pricing": "contract",
        }
    ],
    "subscriptions": [
        {
            "product_code": "contract01",
            "customer_aws_account_id": NEW_BUYER,
            "entitlements": [
                {"dimension": "seats", "value": 25, "expires_at": "2027-12-01T00:00:00Z"},
                {"dimension": "tier", "value": "gold"},
            ],
        }
    ],
}


def test_an_entitlement_change_goes_to_the_entitlement_topic(
    service: MeteringService, store: SqliteStore
) -> None:
    service.apply_catalog(parse_catalog(CONTRACT_CATALOG))
    subscription_topic = service.marketplace.add_webhook("contract01", f"{SELLER_URL}/subs")
    entitlement_topic = service.marketplace.add_webhook(
        "contract01", f"{SELLER_URL}/ents", "entitlement", "2"
    )
    for webhook in (subscription_topic, entitlement_topic):
        service.marketplace.confirm_webhook(webhook.token)
    before = len(outbox(store))
    service.marketplace.set_entitlement("contract01", NEW_BUYER, "seats", "30")
    [sns] = [d for d in since(store, before) if d.kind == "sns"]
    assert sns.target_id == entitlement_topic.id
    assert sns.body["TopicArn"].endswith("aws-mp-entitlement-notification-contract01")
    message = orjson.loads(sns.body["Message"])
    assert message == {
        "action": "entitlement-updated",
        "customer-identifier": message["customer-identifier"],
        "product-code": "contract01",
    }
