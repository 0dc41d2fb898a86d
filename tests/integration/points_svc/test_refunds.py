"""Refunds through real Kafka: proportional reversal, debt and its repayment, parking."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from memberflow_events.payloads import OrderPurchased, PointsEarned, PointsReversed

from tests.integration.points_svc.conftest import MakeApp
from tests.integration.points_svc.helpers import (
    get_balance,
    now,
    publish,
    purchase,
    refund,
    scalar,
    shop,
    violations,
    wait_for_balance,
    wait_for_points_events,
)
from tests.support import eventually, running_service


def order_id_of(event: object) -> str:
    assert hasattr(event, "payload_as")
    return str(event.payload_as(OrderPurchased).order_id)


async def test_refund_after_the_points_were_spent_records_debt_then_repays_it(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    bought = purchase(member, 10_000)
    await publish(topic_prefix, "orders", [bought])
    await wait_for_balance(client, app, member, "purchase", available=100)
    spent = await client.post(
        f"/v1/members/{member}/redemptions",
        json={"points": 100},
        headers={**shop(app), "Idempotency-Key": "spend-all"},
    )
    assert spent.status_code == 201, spent.text

    await publish(topic_prefix, "orders", [refund(member, order_id_of(bought), 10_000)])
    balance = await wait_for_balance(client, app, member, "debt", debt=100)
    assert balance["available"] == 0
    assert balance["total"] == -100
    (reversed_event,) = await wait_for_points_events(topic_prefix, "points.reversed", 1)
    reversal = reversed_event.payload_as(PointsReversed)
    assert (reversal.points, reversal.debt_points, reversal.balance_after) == (100, 100, -100)

    await publish(topic_prefix, "orders", [purchase(member, 15_000)])
    balance = await wait_for_balance(client, app, member, "repayment", debt=0, available=50)
    assert balance["lifetime_earned"] == 150  # 100 + 150 earned, 100 reversed
    earned = await wait_for_points_events(topic_prefix, "points.earned", 2)
    repaying = [
        e.payload_as(PointsEarned) for e in earned if e.payload_as(PointsEarned).debt_repaid
    ]
    assert [(p.points, p.debt_repaid) for p in repaying] == [(150, 100)]
    assert await violations(app) == []


async def test_partial_refunds_add_up_and_a_refund_id_applies_once(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    bought = purchase(member, 10_000)
    order_id = order_id_of(bought)
    first = refund(member, order_id, 3_333, refund_id="r1")
    resent = refund(member, order_id, 3_333, refund_id="r1")  # same refund, new event id
    await publish(
        topic_prefix,
        "orders",
        [
            bought,
            first,
            resent,
            refund(member, order_id, 3_333, refund_id="r2"),
            refund(member, order_id, 3_334, refund_id="r3"),
        ],
    )

    balance = await wait_for_balance(client, app, member, "full refund", available=0)
    assert balance["lifetime_earned"] == 0
    assert balance["debt"] == 0
    reversals = await wait_for_points_events(topic_prefix, "points.reversed", 3)
    assert sorted(e.payload_as(PointsReversed).points for e in reversals) == [33, 33, 34]
    assert await scalar(app, "SELECT refund_ids FROM orders") == ["r1", "r2", "r3"]
    assert await violations(app) == []


async def test_a_refund_before_its_purchase_is_parked_then_applied(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    bought = purchase(member, 20_000)
    early = refund(member, order_id_of(bought), 5_000)
    await publish(topic_prefix, "orders", [early])

    async def parked() -> bool:
        return bool(await scalar(app, "SELECT count(*) FROM parked_events"))

    await eventually(parked, what="the refund parked")
    assert (await get_balance(client, app, member))["total"] == 0

    await publish(topic_prefix, "orders", [bought])
    balance = await wait_for_balance(client, app, member, "purchase then refund", available=150)
    assert balance["lifetime_earned"] == 150
    assert await scalar(app, "SELECT count(*) FROM parked_events") == 0
    (reversed_event,) = await wait_for_points_events(topic_prefix, "points.reversed", 1)
    assert reversed_event.causation_id == early.event_id
    assert await violations(app) == []


async def test_refund_takes_from_other_lots_once_its_own_lot_is_spent(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    first, second = purchase(member, 10_000), purchase(member, 30_000)
    await publish(topic_prefix, "orders", [first, second])
    await wait_for_balance(client, app, member, "two purchases", available=400)
    spent = await client.post(
        f"/v1/members/{member}/redemptions",
        json={"points": 150},
        headers={**shop(app), "Idempotency-Key": "spend"},
    )
    assert spent.status_code == 201
    remaining_of_first = await scalar(
        app,
        "SELECT remaining FROM lots JOIN orders USING (lot_id) WHERE order_id = :o",
        o=order_id_of(first),
    )

    await publish(topic_prefix, "orders", [refund(member, order_id_of(first), 10_000)])
    balance = await wait_for_balance(client, app, member, "refund", available=150)
    assert balance["debt"] == 0
    assert remaining_of_first in (0, 100)
    assert await violations(app) == []


async def test_many_events_per_member_in_one_batch_apply_in_order(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    members = [uuid.uuid4() for _ in range(20)]
    orders_events = []
    for member in members:
        first, second, late = (purchase(member, 10_000) for _ in range(3))
        orders_events += [
            refund(member, order_id_of(late), 2_000),  # parked until `late` is seen
            first,
            second,
            refund(member, order_id_of(first), 5_000),
            first,  # redelivered
            refund(member, order_id_of(second), 10_000),
            late,
        ]
    await publish(topic_prefix, "orders", orders_events)

    for member in members:
        # 3 × 100 earned; 50 + 100 + 20 reversed.
        balance = await wait_for_balance(client, app, member, "mixed batch", available=130)
        assert balance["lifetime_earned"] == 130
        assert balance["debt"] == 0
    assert await scalar(app, "SELECT count(*) FROM parked_events") == 0
    assert await scalar(app, "SELECT count(*) FROM ledger_entries") == 20 * 6
    assert await violations(app) == []


async def test_a_batch_sees_lots_of_earlier_batches_it_did_not_load(
    make_app: MakeApp, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch loads only the lots expiring by its latest event; the rest stay in storage,
    summed. balance_after and refunds must still see every lot, one expiring mid-batch too.
    """
    member, at = uuid.uuid4(), now()
    # Expires an hour ago, so between the first two events of the second batch.
    expiring = purchase(member, 10_000, occurred_at=at - timedelta(days=365, hours=1))
    kept = purchase(member, 20_000, occurred_at=at - timedelta(days=1))
    refunded = purchase(member, 30_000, occurred_at=at - timedelta(days=1))
    first = await make_app()
    async with running_service(first) as client:
        await publish(topic_prefix, "orders", [expiring, kept, refunded])
        await wait_for_balance(client, first, member, "first run", available=500)

    # Published while the service is down, so the restarted consumer gets them in one batch.
    before_expiry = purchase(member, 5_000, occurred_at=at - timedelta(hours=2))
    refund_event = refund(
        member, order_id_of(refunded), 30_000, occurred_at=at - timedelta(minutes=30)
    )
    latest = purchase(member, 2_000, occurred_at=at)
    await publish(topic_prefix, "orders", [before_expiry, refund_event, latest])
    second = await make_app(database_url=first.state.runtime.settings.database_url)
    async with running_service(second) as client:
        await wait_for_balance(client, second, member, "second run", available=270)
        earned = await wait_for_points_events(topic_prefix, "points.earned", 5)
        by_cause = {e.causation_id: e.payload_as(PointsEarned).balance_after for e in earned}
        # 100 (still live 2 h ago) + 200 + 300 + 50; then 200 + 50 + 20 once it expired.
        assert by_cause[before_expiry.event_id] == 650
        assert by_cause[latest.event_id] == 270
        (reversal,) = await wait_for_points_events(topic_prefix, "points.reversed", 1)
        assert reversal.payload_as(PointsReversed).balance_after == 250
        assert await violations(second) == []
    # Applied as one batch, not rescued by the fallback of one event per transaction.
    assert "applying one at a time" not in caplog.text
