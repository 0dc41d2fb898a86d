"""Redemptions over REST: idempotency, 409 with the numbers, and no overdraw under load."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from fastapi import FastAPI
from memberflow_events.payloads import PointsRedeemed

from tests.integration.points_svc.helpers import (
    bonus,
    get_balance,
    publish,
    purchase,
    scalar,
    shop,
    violations,
    wait_for_balance,
    wait_for_points_events,
)


async def funded(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str, points: int
) -> uuid.UUID:
    member = uuid.uuid4()
    await publish(topic_prefix, "campaigns", [bonus(member, points)])
    await wait_for_balance(client, app, member, f"{points} points", available=points)
    return member


def redeem(
    client: httpx.AsyncClient, app: FastAPI, member: uuid.UUID, key: str, **body: object
) -> asyncio.Future[httpx.Response]:
    return asyncio.ensure_future(
        client.post(
            f"/v1/members/{member}/redemptions",
            json=body,
            headers={**shop(app), "Idempotency-Key": key},
        )
    )


async def test_concurrent_redemptions_never_overdraw(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = await funded(app, client, topic_prefix, 1_000)

    responses = await asyncio.gather(
        *[redeem(client, app, member, f"k-{i}", points=70) for i in range(50)]
    )

    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {201, 409}, [r.text for r in responses if r.status_code >= 500]
    assert statuses.count(201) == 14  # 14 × 70 = 980 ≤ 1,000 < 15 × 70
    refused = [response.json() for response in responses if response.status_code == 409]
    assert all(body["requested"] == 70 and body["available"] < 70 for body in refused)
    balance = await get_balance(client, app, member)
    assert balance["available"] == 20
    assert balance["lifetime_redeemed"] == 980
    assert await scalar(app, "SELECT count(*) FROM redemptions") == 14
    redeemed = await wait_for_points_events(topic_prefix, "points.redeemed", 14)
    assert sum(event.payload_as(PointsRedeemed).points for event in redeemed) == 980
    assert await violations(app) == []


async def test_idempotency_key_replays_the_response_and_refuses_another_body(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = await funded(app, client, topic_prefix, 500)

    first = await redeem(client, app, member, "same", points=100, reference="reward-1")
    again = await redeem(client, app, member, "same", points=100, reference="reward-1")
    other = await redeem(client, app, member, "same", points=101, reference="reward-1")

    assert first.status_code == 201, first.text
    body = first.json()
    assert body["points"] == 100
    assert body["balance_after"] == 400
    assert body["reference"] == "reward-1"
    assert again.status_code == 201
    assert again.json() == body
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert (await get_balance(client, app, member))["available"] == 400


async def test_insufficient_balance_is_a_409_with_the_numbers(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    # 50 points pending for 14 days cannot be spent; 30 bonus points can.
    await publish(topic_prefix, "campaigns", [bonus(member, 30)])
    await wait_for_balance(client, app, member, "bonus", available=30)

    refused = await redeem(client, app, member, "too-much", points=31)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["available"] == 30
    assert problem["requested"] == 31
    assert problem["errors"][0]["field"] == "points"
    # A refusal is not stored: the same key works once the points are there.
    await publish(topic_prefix, "orders", [purchase(member, 100)])
    await wait_for_balance(client, app, member, "one more point", available=31)
    assert (await redeem(client, app, member, "too-much", points=31)).status_code == 201

    unknown = await redeem(client, app, uuid.uuid4(), "nobody", points=1)
    assert unknown.status_code == 409
    assert unknown.json()["available"] == 0


async def test_redemption_spends_soonest_expiring_lots_first(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    from datetime import timedelta

    from tests.integration.points_svc.helpers import now

    member = uuid.uuid4()
    old = purchase(member, 10_000, occurred_at=now() - timedelta(days=300))
    new = purchase(member, 20_000, occurred_at=now() - timedelta(days=1))
    await publish(topic_prefix, "orders", [new, old])
    await wait_for_balance(client, app, member, "two lots", available=300)

    assert (await redeem(client, app, member, "k", points=120)).status_code == 201

    remaining = await scalar(
        app, "SELECT array_agg(remaining ORDER BY expires_at) FROM lots WHERE member_id = :m",
        m=member,
    )  # fmt: skip
    assert remaining == [0, 180]


async def test_redemption_validation_names_the_field(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    member = uuid.uuid4()
    for body, field in (
        ({"points": 0}, "points"),
        ({"points": -5}, "points"),
        ({"points": "many"}, "points"),
        ({}, "points"),
        ({"points": 1, "reference": ""}, "reference"),
        ({"points": 1, "extra": True}, "extra"),
    ):
        response = await redeem(client, app, member, "v", **body)
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == field, response.json()
    missing_key = await client.post(
        f"/v1/members/{member}/redemptions", json={"points": 1}, headers=shop(app)
    )
    assert missing_key.status_code == 400
    assert missing_key.json()["errors"][0]["field"] == "Idempotency-Key"
