"""Ops REST of campaigns: validation naming fields, listing, stats, status and window, auth."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.integration.campaign_svc.helpers import (
    create_campaign,
    member_token,
    ops,
    shop,
    welcome_campaign,
)

pytestmark = pytest.mark.infra


async def _refused(client: httpx.AsyncClient, app: FastAPI, body: dict[str, Any]) -> list[str]:
    response = await client.post("/v1/campaigns", json=body, headers=ops(app))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [error["field"] for error in response.json()["errors"]]


async def test_a_campaign_that_can_never_fire_or_act_is_refused_naming_the_field(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    assert await _refused(client, app, welcome_campaign(actions=[])) == ["actions"]
    assert await _refused(
        client, app, welcome_campaign(trigger={"kind": "churn_risk", "min_score": 1.5})
    ) == ["trigger.churn_risk.min_score"]
    assert await _refused(
        client,
        app,
        welcome_campaign(
            trigger={"kind": "tier_changed", "to_tier": "gold"}, audience={"tiers": ["silver"]}
        ),
    ) == ["audience.tiers"]
    assert await _refused(
        client,
        app,
        welcome_campaign(controls={"budget": {"unit": "points", "limit": 100}}),
    ) == ["controls.budget.unit"]
    assert await _refused(
        client,
        app,
        welcome_campaign(
            controls={"starts_at": "2026-02-01T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z"}
        ),
    ) == ["controls.ends_at"]
    assert await _refused(
        client,
        app,
        welcome_campaign(
            actions=[
                {"kind": "coupon", "terms": {"kind": "percent", "value": 150}, "valid_days": 3}
            ]
        ),
    ) == ["actions.0.coupon.terms.value"]
    assert await _refused(client, app, welcome_campaign(controls={"control_share": "0.95"})) == [
        "controls.control_share"
    ]
    listed = await client.get("/v1/campaigns", headers=ops(app))
    assert listed.json()["items"] == []  # nothing half-written


async def test_create_read_list_and_pages(client: httpx.AsyncClient, app: FastAPI) -> None:
    chosen = str(uuid.uuid4())
    created = await create_campaign(client, app, welcome_campaign(campaign_id=chosen))
    assert created["campaign_id"] == chosen
    assert created["status"] == "active"
    assert created["definition"]["trigger"] == {"kind": "member_registered"}
    again = await client.post(
        "/v1/campaigns", json=welcome_campaign(campaign_id=chosen), headers=ops(app)
    )
    assert again.status_code == 409
    others = [await create_campaign(client, app, welcome_campaign(name=f"c{i}")) for i in range(4)]

    read = await client.get(f"/v1/campaigns/{chosen}", headers=ops(app))
    assert read.status_code == 200
    assert read.json()["stats"] == {
        "exposures": {"treatment": 0, "control": 0},
        "coupons": {"issued": 0, "redeemed": 0, "expired": 0, "voided": 0},
        "budget": None,
    }
    first = (await client.get("/v1/campaigns?limit=3", headers=ops(app))).json()
    second = (
        await client.get(f"/v1/campaigns?limit=3&cursor={first['next_cursor']}", headers=ops(app))
    ).json()
    ids = [c["campaign_id"] for c in first["items"] + second["items"]]
    assert ids == [chosen, *(c["campaign_id"] for c in others)]
    assert second["next_cursor"] is None
    missing = await client.get(f"/v1/campaigns/{uuid.uuid4()}", headers=ops(app))
    assert missing.status_code == 404
    bad_cursor = await client.get("/v1/campaigns?cursor=nonsense", headers=ops(app))
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["field"] == "cursor"


async def test_pause_resume_move_the_window_and_end(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    campaign = await create_campaign(client, app, welcome_campaign())
    url = f"/v1/campaigns/{campaign['campaign_id']}"

    paused = await client.patch(url, json={"status": "paused"}, headers=ops(app))
    assert paused.json()["status"] == "paused"
    window = {"starts_at": "2026-01-01T00:00:00Z", "ends_at": "2027-01-01T00:00:00Z"}
    moved = await client.patch(url, json={"status": "active", **window}, headers=ops(app))
    assert moved.status_code == 200
    assert moved.json()["status"] == "active"
    assert moved.json()["definition"]["controls"]["ends_at"] == "2027-01-01T00:00:00Z"
    backwards = await client.patch(url, json={"ends_at": "2025-06-01T00:00:00Z"}, headers=ops(app))
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "controls.ends_at"
    unknown = await client.patch(url, json={"budget": 5}, headers=ops(app))
    assert unknown.status_code == 422

    ended = await client.delete(url, headers=ops(app))
    assert ended.json()["status"] == "ended"
    assert (await client.delete(url, headers=ops(app))).status_code == 200
    revived = await client.patch(url, json={"status": "active"}, headers=ops(app))
    assert revived.status_code == 409
    only_active = await client.get("/v1/campaigns?status=active", headers=ops(app))
    assert only_active.json()["items"] == []


async def test_campaigns_are_for_ops_only(client: httpx.AsyncClient, app: FastAPI) -> None:
    body = welcome_campaign()
    assert (await client.post("/v1/campaigns", json=body)).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await client.get("/v1/campaigns", headers=bad)).status_code == 401
    for headers in (shop(app), member_token(app, uuid.uuid4())):
        assert (await client.post("/v1/campaigns", json=body, headers=headers)).status_code == 403
        assert (await client.get("/v1/campaigns", headers=headers)).status_code == 403


async def test_the_openapi_document_lists_every_route(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths) >= {
        "/v1/campaigns",
        "/v1/campaigns/{campaign_id}",
        "/v1/members/{member_id}/coupons",
        "/v1/coupons/validate",
        "/v1/coupons/redeem",
    }
