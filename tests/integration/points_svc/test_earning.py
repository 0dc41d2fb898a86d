"""Earning through real Kafka: purchases, duplicates, tier multipliers, campaign bonuses."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
from fastapi import FastAPI
from memberflow_events.payloads import OrderLine, OrderPurchased, PointsEarned

from tests.integration.points_svc.helpers import (
    bonus,
    get_balance,
    points_events,
    publish,
    purchase,
    scalar,
    tier_changed,
    violations,
    wait_for_balance,
    wait_for_points_events,
)
from tests.support import eventually


async def test_purchases_become_a_balance_and_points_earned(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    orders = [purchase(member, 12_345), purchase(member, 5_000), purchase(member, 99)]
    await publish(topic_prefix, "orders", orders)

    balance = await wait_for_balance(client, app, member, "three purchases", available=173)
    assert balance["pending"] == 0
    assert balance["debt"] == 0
    assert balance["total"] == 173
    assert balance["lifetime_earned"] == 173
    assert balance["lifetime_redeemed"] == 0
    # 0.99 earns nothing, so it announces nothing.
    earned = await wait_for_points_events(topic_prefix, "points.earned", 2)
    payloads = [event.payload_as(PointsEarned) for event in earned]
    assert sorted(p.points for p in payloads) == [50, 123]
    order_ids = {o.payload_as(OrderPurchased).order_id for o in orders}
    assert {p.order_id for p in payloads} < order_ids
    assert all(p.source == "order" and p.multiplier == 1 for p in payloads)
    assert all(event.member_id == member for event in earned)
    assert all(event.causation_id in {o.event_id for o in orders} for event in earned)
    assert max(p.balance_after or 0 for p in payloads) == 173
    assert await violations(app) == []


async def test_the_same_purchase_delivered_twice_is_credited_once(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    order = purchase(member, 10_000)
    # The same event twice, then the same order again under a new event id.
    order_id = order.payload_as(OrderPurchased).order_id
    again = purchase(member, 10_000, order_id=order_id)
    marker = purchase(member, 700)
    await publish(topic_prefix, "orders", [order, order, again, marker])

    await wait_for_balance(client, app, member, "the marker purchase", available=107)
    assert await scalar(app, "SELECT count(*) FROM ledger_entries") == 2
    earned = await wait_for_points_events(topic_prefix, "points.earned", 2)
    assert len(earned) == 2


async def test_guest_orders_and_excluded_categories_earn_nothing(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    lines = [
        OrderLine(sku="gc", category="gift_card", quantity=1, unit_price_minor=5_000),
        OrderLine(sku="bk", category="books", quantity=2, unit_price_minor=1_000),
    ]
    await publish(
        topic_prefix,
        "orders",
        [purchase(None, 20_000), purchase(member, 7_000, lines=lines), purchase(member, 100)],
    )

    await wait_for_balance(client, app, member, "books only", available=21)
    assert await scalar(app, "SELECT count(*) FROM orders WHERE member_id IS NULL") == 0


async def test_tier_multiplier_applies_to_later_purchases(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    await publish(topic_prefix, "tiers", [tier_changed(member, "gold", "1.5")])
    await wait_for_tier(app, member)
    await publish(topic_prefix, "orders", [purchase(member, 10_000)])

    await wait_for_balance(client, app, member, "gold purchase", available=150)
    (earned,) = await wait_for_points_events(topic_prefix, "points.earned", 1)
    assert earned.payload_as(PointsEarned).multiplier == Decimal("1.5")
    assert earned.payload_as(PointsEarned).points == 150


async def wait_for_tier(app: FastAPI, member: uuid.UUID) -> None:
    async def projected() -> bool:
        found = await scalar(
            app, "SELECT count(*) FROM tier_multipliers WHERE member_id = :m", m=member
        )
        return bool(found)

    await eventually(projected, what="tier projection")


async def test_bonus_awarded_is_credited_once_per_award(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    award = bonus(member, 250)
    resent = bonus(member, 250, award_id=award.payload.award_id)  # type: ignore[attr-defined]
    await publish(topic_prefix, "campaigns", [award, award, resent, bonus(member, 5)])

    balance = await wait_for_balance(client, app, member, "two awards", available=255)
    assert balance["lifetime_earned"] == 255
    earned = await wait_for_points_events(topic_prefix, "points.earned", 2)
    bonuses = [event.payload_as(PointsEarned) for event in earned]
    assert {p.source for p in bonuses} == {"bonus"}
    assert all(p.campaign_id is not None for p in bonuses)
    assert len(await points_events(topic_prefix, "points.earned")) == 2
    assert (await get_balance(client, app, member))["available"] == 255
