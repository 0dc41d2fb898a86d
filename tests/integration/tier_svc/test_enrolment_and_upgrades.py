"""Enrolment and upgrades from member and order events, through Kafka and back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from tests.integration.tier_svc.helpers import (
    days_ago,
    member_tier,
    order_id_of,
    publish,
    purchased,
    registered,
    scalar,
    tier_events,
    wait_for_tier_events,
    wait_for_value,
)
from tests.support import eventually


async def test_registration_emits_the_initial_tier(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    joined = days_ago(3)
    await publish(producer, topic_prefix, registered(member, joined))
    [initial] = await wait_for_tier_events(topic_prefix, member, 1)
    assert (initial.from_tier, initial.to_tier, initial.direction) == (None, "basic", "initial")
    assert initial.reason == "enrolled"
    assert initial.multiplier == Decimal(1)
    assert initial.qualifying_value == 0
    assert initial.protected_until == joined + timedelta(days=365)
    view = await member_tier(client, app, member)
    assert (view["tier"], view["qualifying_value"], view["next_tier"]) == ("basic", 0, "silver")


async def test_crossing_two_thresholds_is_one_upgrade_straight_to_gold(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    second = days_ago(5)
    await publish(
        producer,
        topic_prefix,
        registered(member, days_ago(30)),
        purchased(member, 500_00, days_ago(20)),
        purchased(member, 4_600_00, second),
    )
    initial, upgrade = await wait_for_tier_events(topic_prefix, member, 2)
    assert initial.direction == "initial"
    assert (upgrade.from_tier, upgrade.to_tier, upgrade.direction) == ("basic", "gold", "upgrade")
    assert upgrade.reason == "threshold_reached"
    assert upgrade.multiplier == Decimal("1.5")
    assert upgrade.qualifying_value == 5_100_00
    assert upgrade.protected_until == second + timedelta(days=365)
    view = await wait_for_value(client, app, member, 5_100_00)
    assert (view["tier"], view["multiplier"], view["next_tier"]) == ("gold", "1.5", "diamond")
    assert len(await tier_events(topic_prefix, member)) == 2


async def test_a_purchase_delivered_twice_counts_once(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    purchase = purchased(member, 4_000_00, days_ago(2))
    # The same event twice, then the same order under a new event id (an order system retry).
    retried = purchased(member, 4_000_00, days_ago(2), order_id=order_id_of(purchase))
    await publish(producer, topic_prefix, registered(member, days_ago(10)))
    await publish(producer, topic_prefix, purchase, purchase, retried)
    await publish(producer, topic_prefix, purchased(member, 500_00, days_ago(1)))
    view = await wait_for_value(client, app, member, 4_500_00)
    assert view["tier"] == "silver"  # counted twice it would have been 8,500.00: gold
    events = await wait_for_tier_events(topic_prefix, member, 2)
    assert [(e.direction, e.to_tier) for e in events] == [
        ("initial", "basic"),
        ("upgrade", "silver"),
    ]
    assert await scalar(app, "SELECT count(*) FROM qualifying_orders") == 2


async def test_a_purchase_before_registration_enrols_implicitly(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    bought = days_ago(4)
    await publish(producer, topic_prefix, purchased(member, 1_500_00, bought))
    initial, upgrade = await wait_for_tier_events(topic_prefix, member, 2)
    assert (initial.direction, initial.to_tier, initial.qualifying_value) == ("initial", "basic", 0)
    assert (upgrade.direction, upgrade.to_tier) == ("upgrade", "silver")
    # The registration arrives late (another topic): the member is enrolled already.
    await publish(producer, topic_prefix, registered(member, days_ago(5)))
    await publish(producer, topic_prefix, purchased(member, 100_00, days_ago(1)))
    await wait_for_value(client, app, member, 1_600_00)
    assert len(await tier_events(topic_prefix, member)) == 2
    enrolled_by = await scalar(
        app, "SELECT enrolled_by FROM member_tiers WHERE member_id = :m", m=member
    )
    assert enrolled_by == "order.purchased"


async def test_guest_orders_are_ignored(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    await publish(producer, topic_prefix, purchased(None, 9_000_00, days_ago(1)))
    await publish(producer, topic_prefix, registered(member, days_ago(1)))
    await wait_for_tier_events(topic_prefix, member, 1)

    async def both_applied() -> bool:
        return bool(await scalar(app, "SELECT count(*) FROM inbox") == 2)

    await eventually(both_applied, what="the guest order and the registration in the inbox")
    await wait_for_value(client, app, member, 0)
    assert await scalar(app, "SELECT count(*) FROM qualifying_orders") == 0
    assert await scalar(app, "SELECT count(*) FROM member_tiers") == 1
