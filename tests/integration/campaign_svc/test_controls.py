"""Control group, frequency cap and budget: exact limits, also under concurrent triggers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from campaign_svc import repository
from campaign_svc.domain import MemberProjection, control_group
from campaign_svc.firing import Firing, fire
from campaign_svc.main import create_app
from fastapi import FastAPI
from memberflow_events.payloads import MemberChurnRisk

from tests.integration.campaign_svc.helpers import (
    create_campaign,
    event,
    of_type,
    ops,
    publish,
    registered,
    sessions,
    wait_applied,
    welcome_campaign,
)
from tests.support import running_service

pytestmark = pytest.mark.infra


async def test_a_20_percent_control_group_is_exposed_but_gets_no_coupon(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    campaign = await create_campaign(
        client, app, welcome_campaign(controls={"control_share": "0.2"})
    )
    campaign_id = uuid.UUID(campaign["campaign_id"])
    members = [uuid.uuid4() for _ in range(200)]
    expected_control = {
        m for m in members if control_group(campaign_id, m, Decimal("0.2")) == "control"
    }

    await publish(topic_prefix, "members", [registered(m) for m in members])
    await wait_applied(app, 200)

    exposed = await of_type(app, "campaign.exposed")
    groups = {e.member_id: e.payload.group for e in exposed}  # type: ignore[attr-defined]
    assert len(exposed) == 200
    assert {m for m, g in groups.items() if g == "control"} == expected_control
    assert 20 <= len(expected_control) <= 60  # ~20% of 200
    coupons = await of_type(app, "coupon.issued")
    assert {c.member_id for c in coupons} == set(members) - expected_control

    stats = (await client.get(f"/v1/campaigns/{campaign_id}", headers=ops(app))).json()["stats"]
    assert stats["exposures"] == {
        "treatment": 200 - len(expected_control),
        "control": len(expected_control),
    }
    assert stats["coupons"]["issued"] == 200 - len(expected_control)


async def test_the_frequency_cap_stops_at_its_limit(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    await create_campaign(
        client,
        app,
        welcome_campaign(
            trigger={"kind": "churn_risk", "min_score": 0.5},
            controls={"frequency_cap": {"max_count": 2, "period_days": 30}},
        ),
    )
    member = uuid.uuid4()
    risks = [event(MemberChurnRisk(score=0.9, reason="quiet"), member) for _ in range(5)]
    await publish(topic_prefix, "analytics", risks)  # parked until the registration comes
    await publish(topic_prefix, "members", [registered(member)])
    await wait_applied(app, 6)

    assert len(await of_type(app, "campaign.exposed")) == 2
    assert len(await of_type(app, "coupon.issued")) == 2


async def test_the_budget_stops_issuance_exactly_at_its_limit(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    campaign = await create_campaign(
        client,
        app,
        welcome_campaign(controls={"budget": {"unit": "coupons", "limit": 5}}),
    )
    await publish(topic_prefix, "members", [registered(uuid.uuid4()) for _ in range(12)])
    await wait_applied(app, 12)

    assert len(await of_type(app, "coupon.issued")) == 5
    assert len(await of_type(app, "campaign.exposed")) == 5
    read = (await client.get(f"/v1/campaigns/{campaign['campaign_id']}", headers=ops(app))).json()
    assert read["stats"]["budget"] == {"unit": "coupons", "limit": 5, "spent": 5}


async def test_two_consumer_instances_share_one_budget_exactly(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    second = create_app(app.state.runtime.settings)
    campaign = await create_campaign(
        client, app, welcome_campaign(controls={"budget": {"unit": "coupons", "limit": 10}})
    )
    async with running_service(second):
        await publish(topic_prefix, "members", [registered(uuid.uuid4()) for _ in range(60)])
        await wait_applied(app, 60)

    assert len(await of_type(app, "coupon.issued")) == 10
    read = (await client.get(f"/v1/campaigns/{campaign['campaign_id']}", headers=ops(app))).json()
    assert read["stats"]["budget"]["spent"] == 10
    assert read["stats"]["coupons"]["issued"] == 10


async def _fire_concurrently(
    app: FastAPI, campaign_id: str, members: list[MemberProjection], occasions: list[str]
) -> list[Firing]:
    """Fire the campaign once per (member, occasion), every firing in its own transaction."""
    now = datetime.now(UTC)
    async with sessions(app)() as session:
        stored = await repository.get_campaign(session, uuid.UUID(campaign_id))
    assert stored is not None

    async def one(member: MemberProjection, occasion: str) -> Firing:
        async with sessions(app)() as session, session.begin():
            return await fire(session, stored, member, now, occasion)

    return await asyncio.gather(*(one(m, o) for m, o in zip(members, occasions, strict=True)))


async def test_concurrent_triggers_never_exceed_the_budget(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    body: dict[str, Any] = welcome_campaign(
        actions=[{"kind": "bonus_points", "points": 300}],
        controls={"budget": {"unit": "points", "limit": 1000}},
    )
    campaign = await create_campaign(client, app, body)
    members = [MemberProjection(member_id=uuid.uuid4()) for _ in range(20)]

    firings = await _fire_concurrently(app, campaign["campaign_id"], members, ["welcome"] * 20)

    assert sum(f.decision.exposed for f in firings) == 3  # 3 × 300 ≤ 1000 < 4 × 300
    async with sessions(app)() as session:
        assert await repository.budget_spent(session, uuid.UUID(campaign["campaign_id"])) == 900


async def test_concurrent_triggers_for_one_member_respect_the_frequency_cap(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    campaign = await create_campaign(
        client,
        app,
        welcome_campaign(
            trigger={"kind": "churn_risk", "min_score": 0.5},
            controls={"frequency_cap": {"max_count": 3, "period_days": 7}},
        ),
    )
    member = MemberProjection(member_id=uuid.uuid4())
    occasions = [f"event:{uuid.uuid4()}" for _ in range(12)]

    firings = await _fire_concurrently(app, campaign["campaign_id"], [member] * 12, occasions)

    assert sum(f.decision.exposed for f in firings) == 3
    coupons = sum(len(f.events) - 1 for f in firings if f.decision.exposed)
    assert coupons == 3


async def test_an_occasion_is_used_once_even_when_fired_concurrently(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    campaign = await create_campaign(client, app, welcome_campaign())
    member = MemberProjection(member_id=uuid.uuid4())

    firings = await _fire_concurrently(app, campaign["campaign_id"], [member] * 8, ["welcome"] * 8)

    assert sum(f.decision.exposed for f in firings) == 1


async def test_exposures_older_than_the_cap_period_no_longer_count(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    campaign = await create_campaign(
        client,
        app,
        welcome_campaign(
            trigger={"kind": "churn_risk", "min_score": 0.5},
            controls={"frequency_cap": {"max_count": 1, "period_days": 7}},
        ),
    )
    async with sessions(app)() as session:
        stored = await repository.get_campaign(session, uuid.UUID(campaign["campaign_id"]))
    assert stored is not None
    member = MemberProjection(member_id=uuid.uuid4())
    start = datetime.now(UTC)
    outcomes = []
    for days, occasion in ((0, "event:a"), (6, "event:b"), (7, "event:c")):
        async with sessions(app)() as session, session.begin():
            firing = await fire(session, stored, member, start + timedelta(days=days), occasion)
        outcomes.append(firing.decision.exposed)
    assert outcomes == [True, False, True]
