"""The points metric: points.earned / points.reversed feed the value when the ladder says so."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from tests.integration.tier_svc.helpers import (
    days_ago,
    ops,
    points_earned,
    points_reversed,
    publish,
    purchased,
    scalar,
    wait_for_tier_events,
    wait_for_value,
)
from tests.support import eventually


def points_ladder() -> dict[str, Any]:
    return {
        "metric": "points",
        "tiers": [
            {"code": "blue", "name": "Blue", "rank": 0, "threshold": 0},
            {"code": "silver", "name": "Silver", "rank": 1, "threshold": 100, "multiplier": "1.1"},
            {"code": "gold", "name": "Gold", "rank": 2, "threshold": 500, "multiplier": "1.3"},
        ],
    }


async def test_points_upgrade_and_reversals_revoke(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    assert (
        await client.put("/v1/tiers", json=points_ladder(), headers=ops(app))
    ).status_code == 200
    member = uuid.uuid4()
    await publish(producer, topic_prefix, points_earned(member, 600, "o-1", days_ago(5)))
    initial, upgrade = await wait_for_tier_events(topic_prefix, member, 2)
    assert (initial.to_tier, upgrade.to_tier, upgrade.qualifying_value) == ("blue", "gold", 600)
    view = await wait_for_value(client, app, member, 600)
    assert view["progress_text"] == "gold is the highest tier"

    # Purchases do not move a points ladder (points-svc's credit for them does).
    await publish(producer, topic_prefix, purchased(member, 9_000_00, days_ago(4)))
    await publish(producer, topic_prefix, points_reversed(member, 300, "o-1", days_ago(2)))
    *_, revoked = await wait_for_tier_events(topic_prefix, member, 3)
    assert (revoked.from_tier, revoked.to_tier, revoked.reason) == (
        "gold",
        "silver",
        "refund_revoked",
    )
    assert revoked.qualifying_value == 300
    # More reversed than the order earned: capped at the 300 left.
    await publish(producer, topic_prefix, points_reversed(member, 500, "o-1", days_ago(1)))
    view = await wait_for_value(client, app, member, 0)
    assert (view["tier"], view["metric"]) == ("blue", "points")


async def test_a_reversal_before_its_earning_is_parked(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    assert (
        await client.put("/v1/tiers", json=points_ladder(), headers=ops(app))
    ).status_code == 200
    member = uuid.uuid4()
    await publish(producer, topic_prefix, points_earned(member, 50, "o-1", days_ago(9)))
    await wait_for_value(client, app, member, 50)
    await publish(producer, topic_prefix, points_reversed(member, 20, "o-2", days_ago(1)))

    async def parked() -> bool:
        return bool(await scalar(app, "SELECT count(*) FROM parked_events") == 1)

    await eventually(parked, what="the early reversal parked")
    await publish(producer, topic_prefix, points_earned(member, 120, "o-2", days_ago(3)))
    view = await wait_for_value(client, app, member, 150)
    assert view["tier"] == "silver"
    assert await scalar(app, "SELECT count(*) FROM parked_events") == 0
