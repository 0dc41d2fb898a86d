"""Refunds: they lower the value (dated at the purchase), revoke what they bought, wait for it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from memberflow_events.envelope import new_event
from memberflow_events.payloads import OrderRefunded

from tests.integration.tier_svc.helpers import (
    days_ago,
    order_id_of,
    publish,
    purchased,
    refunded,
    registered,
    scalar,
    tier_events,
    wait_for_tier_events,
    wait_for_value,
)
from tests.support import eventually, read_topic


async def test_a_refund_lowers_the_value_and_revokes_the_tier_it_bought(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    purchase = purchased(member, 6_000_00, days_ago(10))
    refund_at = days_ago(2)
    await publish(producer, topic_prefix, registered(member, days_ago(20)), purchase)
    await publish(
        producer, topic_prefix, refunded(member, order_id_of(purchase), 2_000_00, refund_at)
    )
    _, upgrade, revoked = await wait_for_tier_events(topic_prefix, member, 3)
    assert (upgrade.to_tier, upgrade.qualifying_value) == ("gold", 6_000_00)
    assert (revoked.from_tier, revoked.to_tier, revoked.direction) == (
        "gold",
        "silver",
        "downgrade",
    )
    assert revoked.reason == "refund_revoked"
    assert revoked.qualifying_value == 4_000_00
    assert revoked.protected_until == refund_at + timedelta(days=365)
    view = await wait_for_value(client, app, member, 4_000_00)
    assert (view["tier"], view["amount_needed"]) == ("silver", 1_000_00)


async def test_refunds_of_one_order_never_take_more_than_its_total(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    purchase = purchased(member, 600_00, days_ago(10))
    order_id = order_id_of(purchase)
    first = refunded(member, order_id, 400_00, days_ago(3))
    # The same refund id again under another event id counts once.
    again = new_event(
        first.payload, producer="order-system:test", member_id=member, occurred_at=days_ago(3)
    )
    await publish(producer, topic_prefix, registered(member, days_ago(20)), purchase)
    await publish(producer, topic_prefix, purchased(member, 1_000_00, days_ago(9)))
    await publish(producer, topic_prefix, first, again)
    await wait_for_value(client, app, member, 1_200_00)
    await publish(producer, topic_prefix, refunded(member, order_id, 500_00, days_ago(1)))
    view = await wait_for_value(client, app, member, 1_000_00)  # 600 − 600, not 600 − 900
    assert view["tier"] == "silver"  # the 1,000.00 order bought silver after the refunded one
    assert (
        await scalar(
            app, "SELECT refunded_minor FROM qualifying_orders WHERE order_id = :o", o=order_id
        )
        == 900_00
    )


async def test_a_refund_before_its_purchase_is_parked_then_applied(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    purchase = purchased(member, 6_000_00, days_ago(10))
    await publish(producer, topic_prefix, registered(member, days_ago(20)))
    await publish(
        producer, topic_prefix, refunded(member, order_id_of(purchase), 2_000_00, days_ago(1))
    )

    async def parked() -> bool:
        return bool(await scalar(app, "SELECT count(*) FROM parked_events") == 1)

    await eventually(parked, what="the early refund parked")
    reason = await scalar(app, "SELECT reason FROM parked_events")
    assert reason == "purchase not seen yet"
    await publish(producer, topic_prefix, purchase)
    view = await wait_for_value(client, app, member, 4_000_00)
    assert view["tier"] == "silver"
    events = await wait_for_tier_events(topic_prefix, member, 3)
    assert [(e.direction, e.to_tier, e.reason) for e in events] == [
        ("initial", "basic", "enrolled"),
        ("upgrade", "gold", "threshold_reached"),
        ("downgrade", "silver", "refund_revoked"),
    ]
    assert await scalar(app, "SELECT count(*) FROM parked_events") == 0


async def test_a_guest_refund_is_ignored_not_parked(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    refund = OrderRefunded(order_id="guest-1", refund_id="r-1", amount_minor=100)
    event = new_event(refund, producer="order-system:test", member_id=None, occurred_at=days_ago(1))
    await publish(producer, topic_prefix, event)

    async def applied() -> bool:
        return bool(await scalar(app, "SELECT count(*) FROM inbox") == 1)

    await eventually(applied, what="the guest refund in the inbox")
    assert await scalar(app, "SELECT count(*) FROM parked_events") == 0
    assert await tier_events(topic_prefix, uuid.uuid4()) == []


async def test_a_refund_naming_another_member_is_dead_lettered(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    buyer, stranger = uuid.uuid4(), uuid.uuid4()
    purchase = purchased(buyer, 1_000_00, days_ago(5))
    await publish(producer, topic_prefix, purchase)
    await wait_for_value(client, app, buyer, 1_000_00)
    await publish(
        producer, topic_prefix, refunded(stranger, order_id_of(purchase), 100, days_ago(1))
    )
    dead: list[Any] = []

    async def dead_lettered() -> bool:
        dead[:] = await read_topic(f"{topic_prefix}dlq.tier-svc")
        return bool(dead)

    await eventually(dead_lettered, what="the refund on dlq.tier-svc")
    reason = dict(dead[0].headers)["dlq.reason"].decode()
    assert "RefundOfAnotherMember" in reason
    await wait_for_value(client, app, buyer, 1_000_00)
