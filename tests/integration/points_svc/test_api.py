"""REST surface: authorization, adjustments, history pagination, validation."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from memberflow_events.payloads import PointsAdjusted

from tests.integration.points_svc.helpers import (
    bonus,
    member_token,
    now,
    ops,
    publish,
    purchase,
    shop,
    wait_for_balance,
    wait_for_points_events,
)
from tests.support import bearer


async def test_authorization(app: FastAPI, client: httpx.AsyncClient) -> None:
    member, other = uuid.uuid4(), uuid.uuid4()
    balance = f"/v1/members/{member}/balance"
    history = f"/v1/members/{member}/history"
    redemptions = f"/v1/members/{member}/redemptions"
    adjustments = f"/v1/members/{member}/adjustments"
    key = {"Idempotency-Key": "k"}

    for url in (balance, history, "/v1/ops/reconciliation"):
        assert (await client.get(url)).status_code == 401
    assert (await client.post(redemptions, json={"points": 1}, headers=key)).status_code == 401
    assert (await client.get(balance, headers={"Authorization": "Bearer junk"})).status_code == 401

    own = member_token(app, member)
    assert (await client.get(balance, headers=own)).status_code == 200
    assert (await client.get(history, headers=own)).status_code == 200
    foreign = member_token(app, other)
    assert (await client.get(balance, headers=foreign)).status_code == 403
    assert (await client.get(history, headers=foreign)).status_code == 403
    response = await client.post(redemptions, json={"points": 1}, headers={**foreign, **key})
    assert response.status_code == 403
    assert (await client.get(balance, headers=bearer(app, "nobody"))).status_code == 403

    body = {"points": 5, "reason": "goodwill"}
    for caller in (own, shop(app)):
        response = await client.post(adjustments, json=body, headers={**caller, **key})
        assert response.status_code == 403
    for caller in (own, shop(app)):
        response = await client.get("/v1/ops/reconciliation", headers=caller)
        assert response.status_code == 403
    assert (await client.get("/v1/ops/reconciliation", headers=ops(app))).status_code == 200


async def test_unknown_member_has_a_zero_balance(app: FastAPI, client: httpx.AsyncClient) -> None:
    member = uuid.uuid4()
    response = await client.get(f"/v1/members/{member}/balance", headers=shop(app))
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("available", "pending", "debt", "total")} == dict.fromkeys(
        ("available", "pending", "debt", "total"), 0
    )
    assert body["expiring_soon"] == []
    history = await client.get(f"/v1/members/{member}/history", headers=shop(app))
    assert history.json() == {"items": [], "next_cursor": None}


async def test_adjustments_are_attributed_and_can_claw_back_into_debt(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    url = f"/v1/members/{member}/adjustments"
    caller = ops(app)  # subject "alice"

    granted = await client.post(
        url, json={"points": 30, "reason": "goodwill"}, headers={**caller, "Idempotency-Key": "1"}
    )
    assert granted.status_code == 201, granted.text
    assert granted.json()["actor"] == "alice"
    assert granted.json()["balance_after"] == 30
    replay = await client.post(
        url, json={"points": 30, "reason": "goodwill"}, headers={**caller, "Idempotency-Key": "1"}
    )
    assert replay.json() == granted.json()
    clawed = await client.post(
        url,
        json={"points": -50, "reason": "fraud"},
        headers={**caller, "Idempotency-Key": "2"},
    )
    assert clawed.status_code == 201
    assert clawed.json()["debt_change"] == 20
    balance = await wait_for_balance(client, app, member, "debt", debt=20, available=0)
    assert balance["total"] == -20

    events = await wait_for_points_events(topic_prefix, "points.adjusted", 2)
    adjusted = sorted((e.payload_as(PointsAdjusted) for e in events), key=lambda p: p.points)
    assert [(p.points, p.actor, p.reason) for p in adjusted] == [
        (-50, "alice", "fraud"),
        (30, "alice", "goodwill"),
    ]
    history = (await client.get(f"/v1/members/{member}/history", headers=caller)).json()
    assert [item["cause"]["type"] for item in history["items"]] == ["adjustment"] * 2
    assert history["items"][0]["cause"]["reason"] == "fraud"
    assert history["items"][0]["cause"]["actor"] == "alice"


async def test_adjustment_validation_names_the_field(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    url = f"/v1/members/{uuid.uuid4()}/adjustments"
    headers = {**ops(app), "Idempotency-Key": "v"}
    for body, field in (
        ({"points": 0, "reason": "x"}, "points"),
        ({"points": 5}, "reason"),
        ({"points": 5, "reason": "   "}, "reason"),
        ({"reason": "x"}, "points"),
    ):
        response = await client.post(url, json=body, headers=headers)
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == field, response.json()


async def test_history_pages_through_every_cause(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    await publish(
        topic_prefix,
        "orders",
        [
            purchase(member, 1_000 * (i + 1), occurred_at=now() - timedelta(hours=5 - i))
            for i in range(5)
        ],
    )
    await publish(topic_prefix, "campaigns", [bonus(member, 7)])
    await wait_for_balance(client, app, member, "credits", available=157)
    spent = await client.post(
        f"/v1/members/{member}/redemptions",
        json={"points": 17, "reference": "mug"},
        headers={**shop(app), "Idempotency-Key": "mug"},
    )
    redemption_id = spent.json()["redemption_id"]

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = await client.get(
            f"/v1/members/{member}/history", params=params, headers=member_token(app, member)
        )
        assert page.status_code == 200, page.text
        body = page.json()
        seen.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert len(seen) == 7
    ids = [item["entry_id"] for item in seen]
    assert ids == sorted(ids, reverse=True)
    assert seen[0]["kind"] == "redeem"
    assert seen[0]["points"] == -17
    assert seen[0]["cause"]["redemption_id"] == redemption_id
    assert sum(int(item["points"]) for item in seen) == 140
    causes = {item["cause"]["type"] for item in seen}
    assert causes == {"order", "bonus", "redemption"}

    bad = await client.get(
        f"/v1/members/{member}/history", params={"cursor": "nope"}, headers=shop(app)
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "cursor"
    too_big = await client.get(
        f"/v1/members/{member}/history", params={"limit": 500}, headers=shop(app)
    )
    assert too_big.status_code == 422
    assert too_big.json()["errors"][0]["field"] == "query.limit"
