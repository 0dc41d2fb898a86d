"""GET /v1/members/{id}/tier: benefits, progress, protection, downgrade risk, authorization."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from tests.integration.tier_svc.helpers import (
    days_ago,
    member_token,
    ops,
    publish,
    purchased,
    registered,
    shop,
    wait_for_tier_events,
    wait_for_value,
)


def at(value: Any) -> datetime:
    assert isinstance(value, str)
    return datetime.fromisoformat(value)


async def test_progress_to_the_next_tier(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    silver_at = days_ago(99.5)
    await publish(
        producer,
        topic_prefix,
        registered(member, days_ago(200)),
        purchased(member, 1_200_00, silver_at),
        purchased(member, 3_570_00, days_ago(10)),
    )
    view = await wait_for_value(client, app, member, 4_770_00)
    assert view["member_id"] == str(member)
    assert (view["tier"], view["name"], view["multiplier"], view["perks"]) == (
        "silver",
        "Silver",
        "1.25",
        [],
    )
    assert (view["metric"], view["next_tier"], view["amount_needed"]) == ("spend", "gold", 230_00)
    assert at(view["needed_by"]) == silver_at + timedelta(days=365)
    assert view["within_days"] == 265
    assert view["progress_text"] == "spend 230.00 more within 265 days to reach gold"
    assert at(view["reached_at"]) == silver_at
    assert at(view["protected_until"]) == silver_at + timedelta(days=365)
    assert (view["downgrade_to"], view["amount_to_keep"]) == (None, 0)


async def test_what_a_downgrade_would_be_while_protected(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    ladder = (await client.get("/v1/tiers", headers=ops(app))).json()
    ladder.pop("version")
    ladder["protection_days"] = 400
    ladder["tiers"][2]["perks"] = ["free shipping", "lounge access"]
    assert (await client.put("/v1/tiers", json=ladder, headers=ops(app))).status_code == 200
    member = uuid.uuid4()
    gold_at = days_ago(370)
    await publish(producer, topic_prefix, purchased(member, 6_000_00, gold_at))
    await wait_for_tier_events(topic_prefix, member, 2)
    view = await wait_for_value(client, app, member, 0)  # the purchase has left the window
    assert (view["tier"], view["perks"]) == ("gold", ["free shipping", "lounge access"])
    assert at(view["protected_until"]) == gold_at + timedelta(days=400)
    assert (view["downgrade_to"], view["amount_to_keep"]) == ("basic", 5_000_00)
    assert (view["next_tier"], view["amount_needed"]) == ("diamond", 20_000_00)
    assert (view["needed_by"], view["within_days"]) == (None, None)
    assert view["progress_text"] == "spend 20,000.00 more to reach diamond"


async def test_unknown_member_is_404(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/members/{uuid.uuid4()}/tier", headers=ops(app))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_authorization(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    member, other = uuid.uuid4(), uuid.uuid4()
    await publish(producer, topic_prefix, registered(member))
    await wait_for_tier_events(topic_prefix, member, 1)
    url = f"/v1/members/{member}/tier"
    assert (await client.get(url)).status_code == 401
    garbage = {"Authorization": "Bearer nonsense"}
    assert (await client.get(url, headers=garbage)).status_code == 401
    assert (await client.get(url, headers=member_token(app, member))).status_code == 200
    assert (await client.get(url, headers=member_token(app, other))).status_code == 403
    assert (await client.get(url, headers=shop(app))).status_code == 200
    assert (await client.get(url, headers=ops(app))).status_code == 200
    # The ladder is ops-only.
    assert (await client.get("/v1/tiers")).status_code == 401
    assert (await client.get("/v1/tiers", headers=member_token(app, member))).status_code == 403
    assert (await client.get("/v1/tiers", headers=shop(app))).status_code == 403
    assert (await client.delete("/v1/tiers/gold", headers=shop(app))).status_code == 403
    distribution = await client.get("/v1/tiers/distribution", headers=shop(app))
    assert distribution.status_code == 403


async def test_tiers_read_at_once_each_answer_their_own_member(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    """Concurrent reads share statements (ReadBatcher); no answer may go to another member."""
    spent = {uuid.uuid4(): 100_00 * (index + 1) for index in range(6)}
    await publish(
        producer,
        topic_prefix,
        *(purchased(member, value, days_ago(3)) for member, value in spent.items()),
    )
    for member, value in spent.items():
        await wait_for_value(client, app, member, value)
    unknown = uuid.uuid4()
    asked = [*spent, unknown] * 4
    random.Random(6).shuffle(asked)
    answers = await asyncio.gather(
        *(client.get(f"/v1/members/{member}/tier", headers=shop(app)) for member in asked)
    )
    for member, answer in zip(asked, answers, strict=True):
        if member == unknown:
            assert answer.status_code == 404
            continue
        assert answer.status_code == 200
        assert answer.json()["member_id"] == str(member)
        assert answer.json()["qualifying_value"] == spent[member]
