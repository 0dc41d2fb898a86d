"""Ops CRUD of the ladder: validation naming the field, conflicts, versions, distribution."""

from __future__ import annotations

import copy
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from tests.integration.tier_svc.helpers import (
    days_ago,
    member_tier,
    ops,
    publish,
    purchased,
    scalar,
    wait_for_tier_events,
)


def orders_ladder() -> dict[str, Any]:
    """Tiers by orders placed in a rolling 180 days."""
    return {
        "metric": "orders",
        "window_days": 180,
        "protection_days": 180,
        "tiers": [
            {"code": "member", "name": "Member", "rank": 0, "threshold": 0},
            {"code": "regular", "name": "Regular", "rank": 1, "threshold": 3, "multiplier": "1.2"},
            {"code": "vip", "name": "VIP", "rank": 2, "threshold": 10, "multiplier": "1.5"},
        ],
    }


def broken(change: str) -> dict[str, Any]:
    ladder = orders_ladder()
    tiers = ladder["tiers"]
    if change == "duplicate code":
        tiers[2]["code"] = "regular"
    elif change == "duplicate rank":
        tiers[2]["rank"] = 1
    elif change == "thresholds not increasing":
        tiers[2]["threshold"] = 3
    elif change == "lowest not at zero":
        tiers[0]["threshold"] = 1
    elif change == "zero multiplier":
        tiers[1]["multiplier"] = "0"
    elif change == "unknown metric":
        ladder["metric"] = "visits"
    elif change == "no tiers":
        ladder["tiers"] = []
    elif change == "bad code":
        tiers[1]["code"] = "Not A Code"
    elif change == "unknown field":
        ladder["colour"] = "gold"
    return ladder


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("duplicate code", "tiers.code"),
        ("duplicate rank", "tiers.rank"),
        ("thresholds not increasing", "tiers[vip].threshold"),
        ("lowest not at zero", "tiers[member].threshold"),
        ("zero multiplier", "tiers.1.multiplier"),
        ("unknown metric", "metric"),
        ("no tiers", "tiers"),
        ("bad code", "tiers.1.code"),
        ("unknown field", "colour"),
    ],
)
async def test_an_invalid_ladder_is_422_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient, change: str, field: str
) -> None:
    response = await client.put("/v1/tiers", json=broken(change), headers=ops(app))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["errors"][0]["field"] == field
    assert field in problem["detail"]
    assert (await client.get("/v1/tiers", headers=ops(app))).json()["version"] == 0


async def test_replace_read_and_change_the_ladder(app: FastAPI, client: httpx.AsyncClient) -> None:
    default = (await client.get("/v1/tiers", headers=ops(app))).json()
    assert default["version"] == 0
    assert [(t["code"], t["threshold"]) for t in default["tiers"]] == [
        ("basic", 0),
        ("silver", 100_000),
        ("gold", 500_000),
        ("diamond", 2_000_000),
    ]
    replaced = await client.put("/v1/tiers", json=orders_ladder(), headers=ops(app))
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["version"], replaced.json()["metric"]) == (1, "orders")
    assert (await client.get("/v1/tiers", headers=ops(app))).json() == replaced.json()
    assert await scalar(app, "SELECT changed_by FROM ladder_versions WHERE version = 1") == "alice"

    top = {"code": "legend", "name": "Legend", "rank": 3, "threshold": 25, "perks": ["gift"]}
    added = await client.post("/v1/tiers", json=top, headers=ops(app))
    assert added.status_code == 201, added.text
    assert added.headers["location"] == "/v1/tiers/legend"
    assert (await client.post("/v1/tiers", json=top, headers=ops(app))).status_code == 409
    too_low = {**top, "code": "almost", "rank": 4, "threshold": 20}
    refused = await client.post("/v1/tiers", json=too_low, headers=ops(app))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "tiers[almost].threshold"

    patched = await client.patch(
        "/v1/tiers/vip", json={"multiplier": "1.75", "perks": ["lounge"]}, headers=ops(app)
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["multiplier"], patched.json()["perks"]) == ("1.75", ["lounge"])
    assert (await client.get("/v1/tiers/vip", headers=ops(app))).json() == patched.json()
    assert (await client.get("/v1/tiers/nope", headers=ops(app))).status_code == 404
    ladder = (await client.get("/v1/tiers", headers=ops(app))).json()
    assert [t["code"] for t in ladder["tiers"]] == ["member", "regular", "vip", "legend"]
    assert ladder["version"] == 3


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"threshold": 2}, "tiers[vip].threshold"),
        ({"multiplier": "0"}, "multiplier"),
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"rank": 5}, "rank"),
        ({"perks": [""]}, "perks.0"),
    ],
)
async def test_an_invalid_patch_is_422_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient, patch: dict[str, Any], field: str
) -> None:
    await client.put("/v1/tiers", json=orders_ladder(), headers=ops(app))
    response = await client.patch("/v1/tiers/vip", json=patch, headers=ops(app))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert (await client.get("/v1/tiers", headers=ops(app))).json()["version"] == 1


async def test_patching_or_deleting_an_unknown_tier_is_404(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    patch = await client.patch("/v1/tiers/nope", json={"name": "x"}, headers=ops(app))
    assert patch.status_code == 404
    assert (await client.delete("/v1/tiers/nope", headers=ops(app))).status_code == 404


async def test_a_tier_members_hold_cannot_be_removed(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer, topic_prefix: str
) -> None:
    assert (
        await client.put("/v1/tiers", json=orders_ladder(), headers=ops(app))
    ).status_code == 200
    member = uuid.uuid4()
    await publish(
        producer, topic_prefix, *[purchased(member, 10_00, days_ago(d)) for d in (2.5, 1.5, 0.5)]
    )
    _, upgrade = await wait_for_tier_events(topic_prefix, member, 2)
    assert (upgrade.to_tier, upgrade.qualifying_value, upgrade.multiplier) == (
        "regular",
        3,
        Decimal("1.2"),
    )
    view = await member_tier(client, app, member)
    assert (view["metric"], view["qualifying_value"]) == ("orders", 3)
    assert view["progress_text"] == "place 7 more orders within 177 days to reach vip"

    held = await client.delete("/v1/tiers/regular", headers=ops(app))
    assert held.status_code == 409
    assert "regular" in held.json()["detail"]
    without = copy.deepcopy(orders_ladder())
    without["tiers"] = [t for t in without["tiers"] if t["code"] != "regular"]
    replaced = await client.put("/v1/tiers", json=without, headers=ops(app))
    assert replaced.status_code == 409
    assert replaced.json()["errors"][0]["field"] == "tiers"
    # Nobody holds the lowest tier now, but the next one would have to start at 0.
    lowest = await client.delete("/v1/tiers/member", headers=ops(app))
    assert lowest.status_code == 422
    assert lowest.json()["errors"][0]["field"] == "tiers[regular].threshold"
    assert (await client.delete("/v1/tiers/vip", headers=ops(app))).status_code == 204
    ladder = (await client.get("/v1/tiers", headers=ops(app))).json()
    assert [t["code"] for t in ladder["tiers"]] == ["member", "regular"]

    distribution = await client.get("/v1/tiers/distribution", headers=ops(app))
    assert distribution.status_code == 200
    assert distribution.json() == {
        "total": 1,
        "tiers": [
            {"code": "member", "name": "Member", "members": 0},
            {"code": "regular", "name": "Regular", "members": 1},
        ],
    }
