"""Event triggers end to end: Kafka in, projection and campaign effects, Kafka out."""

from __future__ import annotations

import uuid
from datetime import date

import httpx
import pytest
from fastapi import FastAPI
from memberflow_events.payloads import (
    MemberChurnRisk,
    MemberErased,
    MemberSegmentChanged,
    MemberUpdated,
    OrderLine,
    OrderPurchased,
    PointsExpiring,
)

from tests.integration.campaign_svc.helpers import (
    create_campaign,
    event,
    of_type,
    projection,
    publish,
    registered,
    tier_changed,
    wait_applied,
    wait_published,
    welcome_campaign,
)

pytestmark = pytest.mark.infra


async def test_welcome_coupon_once_even_when_the_registration_is_redelivered(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    campaign = await create_campaign(client, app, welcome_campaign())
    member = uuid.uuid4()
    registration = registered(member, birth_month=3, birth_day=14, time_zone="Europe/Paris")

    await publish(topic_prefix, "members", [registration, registration])
    await publish(topic_prefix, "members", [registration])
    await wait_applied(app, 1)

    issued = await wait_published(topic_prefix, "coupon.issued", 1)
    exposed = await wait_published(topic_prefix, "campaign.exposed", 1)
    assert len(issued) == 1
    assert len(exposed) == 1
    assert issued[0].member_id == member
    assert str(issued[0].payload.campaign_id) == campaign["campaign_id"]  # type: ignore[attr-defined]
    assert issued[0].causation_id == registration.event_id
    assert issued[0].correlation_id == registration.correlation_id
    assert exposed[0].payload.group == "treatment"  # type: ignore[attr-defined]
    seen = await projection(app, member)
    assert seen is not None
    assert (seen.birth_month, seen.birth_day, seen.time_zone) == (3, 14, "Europe/Paris")


async def test_tier_changed_to_gold_issues_the_gold_welcome_coupon(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    await create_campaign(
        client,
        app,
        welcome_campaign(
            name="Welcome to gold",
            trigger={"kind": "tier_changed", "to_tier": "gold"},
            audience={"tiers": ["gold"]},
        ),
    )
    gold, silver, down = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await publish(topic_prefix, "members", [registered(m) for m in (gold, silver, down)])
    await publish(
        topic_prefix,
        "tiers",
        [
            tier_changed(gold, "gold"),
            tier_changed(silver, "silver"),
            tier_changed(down, "gold", direction="downgrade"),
        ],
    )
    await wait_applied(app, 6)

    issued = await of_type(app, "coupon.issued")
    assert [e.member_id for e in issued] == [gold]
    seen = await projection(app, silver)
    assert seen is not None
    assert seen.tier == "silver"


async def test_message_requested_only_with_consent_for_its_channel(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    await create_campaign(
        client,
        app,
        welcome_campaign(
            actions=[
                {"kind": "coupon", "terms": {"kind": "free_shipping"}, "valid_days": 7},
                {"kind": "message", "channel": "email", "template": "welcome"},
            ]
        ),
    )
    consenting, silent, refused = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await publish(
        topic_prefix,
        "members",
        [
            registered(consenting, consents={"email": True}),
            registered(silent),
            registered(refused, consents={"email": False, "sms": True}),
        ],
    )
    await wait_applied(app, 3)

    messages = await of_type(app, "message.requested")
    coupons = await of_type(app, "coupon.issued")
    assert [m.member_id for m in messages] == [consenting]
    assert {c.member_id for c in coupons} == {consenting, silent, refused}
    code = next(c.payload.code for c in coupons if c.member_id == consenting)  # type: ignore[attr-defined]
    assert messages[0].payload.variables == {"coupon_code": code}  # type: ignore[attr-defined]
    assert messages[0].payload.channel == "email"  # type: ignore[attr-defined]


async def test_member_erased_forgets_the_projection_and_stops_targeting(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    await create_campaign(
        client, app, welcome_campaign(trigger={"kind": "tier_changed", "to_tier": "gold"})
    )
    member = uuid.uuid4()
    await publish(
        topic_prefix,
        "members",
        [
            registered(
                member,
                birth_month=5,
                birth_day=1,
                time_zone="Asia/Tokyo",
                consents={"email": True},
                attributes={"country": "JP"},
            ),
            event(MemberErased(), member),
            event(MemberUpdated(birth_month=6, consents={"sms": True}), member),
        ],
    )
    await wait_applied(app, 3)
    await publish(topic_prefix, "tiers", [tier_changed(member, "gold")])
    await wait_applied(app, 4)

    assert await projection(app, member) is None
    assert await of_type(app, "campaign.exposed") == []
    async with app.state.runtime.sessions() as session:
        from sqlalchemy import text

        row = (
            await session.execute(
                text("SELECT * FROM member_projections WHERE member_id = :m"), {"m": member}
            )
        ).one()
    assert row.birth_month is None
    assert row.birth_day is None
    assert row.consents == {}
    assert row.attributes == {}
    assert row.tier is None
    assert row.erased_at is not None


async def test_member_updated_changes_only_what_it_carries(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    await publish(
        topic_prefix,
        "members",
        [
            registered(member, birth_month=2, birth_day=29, consents={"email": True}),
            event(MemberUpdated(time_zone="America/Chicago", consents={"sms": True}), member),
        ],
    )
    await publish(
        topic_prefix,
        "analytics",
        [
            event(
                MemberSegmentChanged(
                    rfm_segment="champions", recency_score=5, frequency_score=5, monetary_score=5
                ),
                member,
            )
        ],
    )
    await wait_applied(app, 3)

    seen = await projection(app, member)
    assert seen is not None
    assert (seen.birth_month, seen.birth_day) == (2, 29)
    assert seen.time_zone == "America/Chicago"
    assert seen.consents == {"email": True, "sms": True}
    assert seen.rfm_segment == "champions"


def _order(member: uuid.UUID, order_id: str) -> OrderPurchased:
    line = OrderLine(sku="sku-1", category="shoes", quantity=1, unit_price_minor=5000)
    return OrderPurchased(
        order_id=order_id,
        member_id=member,
        currency="EUR",
        total_minor=5000,
        lines=[line],
        channel="web",
    )


async def test_second_purchase_fires_once_and_a_resent_order_is_not_counted(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    await create_campaign(
        client,
        app,
        welcome_campaign(
            trigger={"kind": "nth_purchase", "n": 2},
            actions=[{"kind": "bonus_points", "points": 250, "reason": "second order"}],
        ),
    )
    member = uuid.uuid4()
    first = _order(member, "o-1")
    await publish(topic_prefix, "members", [registered(member)])
    await publish(
        topic_prefix,
        "orders",
        [
            event(first, member, "order-system:test"),
            event(first, member, "order-system:test"),  # same order under another event id
            event(_order(member, "o-2"), member, "order-system:test"),
            event(_order(member, "o-3"), member, "order-system:test"),
        ],
    )
    await wait_applied(app, 5)

    awards = await of_type(app, "bonus.awarded")
    assert len(awards) == 1
    assert awards[0].payload.points == 250  # type: ignore[attr-defined]
    assert awards[0].payload.reason == "second order"  # type: ignore[attr-defined]
    seen = await projection(app, member)
    assert seen is not None
    assert seen.purchase_count == 3


async def test_churn_risk_over_the_threshold_and_expiring_points_fire_win_back_and_reminder(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    win_back = await create_campaign(
        client,
        app,
        welcome_campaign(name="Win back", trigger={"kind": "churn_risk", "min_score": 0.7}),
    )
    reminder = await create_campaign(
        client,
        app,
        welcome_campaign(
            name="Points expiring",
            trigger={"kind": "points_expiring", "min_points": 100},
            actions=[{"kind": "message", "channel": "push", "template": "points_expiring"}],
        ),
    )
    risky, safe = uuid.uuid4(), uuid.uuid4()
    await publish(topic_prefix, "members", [registered(risky, consents={"push": True})])
    await publish(
        topic_prefix,
        "analytics",
        [
            event(MemberChurnRisk(score=0.8, reason="p_alive low"), risky),
            event(MemberChurnRisk(score=0.5, reason="p_alive low"), safe),
        ],
    )
    await publish(
        topic_prefix,
        "points",
        [
            event(PointsExpiring(points=500, expires_on=date(2030, 1, 1)), risky),
            event(PointsExpiring(points=50, expires_on=date(2030, 1, 1)), risky),
        ],
    )
    await wait_applied(app, 5)

    coupons = await of_type(app, "coupon.issued")
    assert [(c.member_id, str(c.payload.campaign_id)) for c in coupons] == [  # type: ignore[attr-defined]
        (risky, win_back["campaign_id"])
    ]
    messages = await of_type(app, "message.requested")
    assert [(m.member_id, str(m.payload.campaign_id)) for m in messages] == [  # type: ignore[attr-defined]
        (risky, reminder["campaign_id"])
    ]
