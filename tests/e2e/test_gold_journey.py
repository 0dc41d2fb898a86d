"""One member's road to gold, across four services talking only through real Kafka.

member-svc registers the member; purchases (published to `orders` as an order system
would) push the member to gold in tier-svc, whose `tier.changed` makes points-svc earn
the next purchase with the gold multiplier and makes campaign-svc's "welcome to gold"
campaign issue a coupon, which then redeems once and only once over campaign-svc's REST.

Expected numbers come from the services' own configuration: the ladder tier-svc serves
(the built-in default) and points-svc's earning rate.
"""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import pytest
from campaign_svc.main import create_app as create_campaign_app
from campaign_svc.settings import CampaignSettings
from fastapi import FastAPI
from member_svc.main import create_app as create_member_app
from member_svc.settings import MemberSettings
from memberflow_events.envelope import Envelope
from memberflow_events.payloads import PointsEarned
from memberflow_platform.auth import MEMBER_SELF, OPS, STOREFRONT
from points_svc.main import create_app as create_points_app
from points_svc.settings import PointsSettings
from tier_svc.main import create_app as create_tier_app
from tier_svc.settings import TierSettings

from tests.conftest import CreateDatabase
from tests.integration.campaign_svc.helpers import of_type
from tests.integration.member_svc.helpers import register
from tests.integration.points_svc.helpers import (
    points_events,
    publish,
    purchase,
    scalar,
    wait_for_balance,
)
from tests.integration.tier_svc.helpers import tier_events
from tests.support import KAFKA_BOOTSTRAP, REDIS_URL, bearer, eventually, running_service

pytestmark = pytest.mark.infra

GOLD = "gold"
COUPON_TERMS = {"kind": "percent", "value": 10, "min_spend_minor": 5_000, "currency": "EUR"}


@dataclass(frozen=True)
class Service:
    app: FastAPI
    client: httpx.AsyncClient

    def as_ops(self) -> dict[str, str]:
        return bearer(self.app, "alice", OPS)

    def as_shop(self) -> dict[str, str]:
        return bearer(self.app, "shop", STOREFRONT)

    def as_member(self, member_id: uuid.UUID) -> dict[str, str]:
        return bearer(self.app, str(member_id), MEMBER_SELF)

    async def get(self, path: str, headers: dict[str, str]) -> Any:
        response = await self.client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()


@dataclass(frozen=True)
class Services:
    member: Service
    tier: Service
    points: Service
    campaign: Service
    points_settings: PointsSettings


@pytest.fixture
async def services(create_database: CreateDatabase, topic_prefix: str) -> AsyncIterator[Services]:
    """The four services on one set of topics, each with its own fresh database."""

    async def shared(label: str) -> dict[str, Any]:
        return {
            "database_url": await create_database(label),
            "topic_prefix": topic_prefix,
            "kafka_bootstrap": KAFKA_BOOTSTRAP,
            "redis_url": REDIS_URL,
        }

    # Periodic jobs off where the services' own integration fixtures turn them off.
    member_app = create_member_app(MemberSettings(**await shared("member")))
    tier_app = create_tier_app(TierSettings(**await shared("tier")))
    points_settings = PointsSettings(**await shared("points"), run_jobs=False)
    points_app = create_points_app(points_settings)
    campaign_app = create_campaign_app(CampaignSettings(**await shared("campaign"), run_jobs=False))

    async with contextlib.AsyncExitStack() as stack:

        async def start(app: FastAPI) -> Service:
            return Service(app, await stack.enter_async_context(running_service(app)))

        yield Services(
            member=await start(member_app),
            tier=await start(tier_app),
            points=await start(points_app),
            campaign=await start(campaign_app),
            points_settings=points_settings,
        )


# ---------- configuration the expectations come from ----------


async def tier_ladder(tier: Service) -> dict[str, dict[str, Any]]:
    """The ladder tier-svc runs with, by tier code; version 0 is the built-in default."""
    ladder = await tier.get("/v1/tiers", tier.as_ops())
    assert ladder["version"] == 0, "the test expects the default ladder"
    return {rung["code"]: rung for rung in ladder["tiers"]}


def expected_points(settings: PointsSettings, amount_minor: int, multiplier: Decimal) -> int:
    """The contract's earning rule: floor(spend / 100 x rate x tier multiplier)."""
    units = Fraction(amount_minor, settings.points_minor_units_per_unit)
    return math.floor(units * Fraction(settings.points_rate_per_unit) * Fraction(multiplier))


# ---------- steps of the journey ----------


async def create_welcome_to_gold_campaign(campaign: Service) -> str:
    body = {
        "name": "Welcome to gold",
        "trigger": {"kind": "tier_changed", "to_tier": GOLD},
        "actions": [{"kind": "coupon", "terms": COUPON_TERMS, "valid_days": 30}],
    }
    response = await campaign.client.post("/v1/campaigns", json=body, headers=campaign.as_ops())
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["campaign_id"]
    return campaign_id


async def wait_until_known_everywhere(services: Services, member_id: uuid.UUID) -> None:
    """member.registered reached tier-svc (enrolled) and points-svc (account opened)."""

    async def enrolled() -> bool:
        tier = services.tier
        response = await tier.client.get(f"/v1/members/{member_id}/tier", headers=tier.as_shop())
        return response.status_code == 200 and response.json()["tier"] == "basic"

    async def account_opened() -> bool:
        found = await scalar(
            services.points.app, "SELECT count(*) FROM accounts WHERE member_id = :m", m=member_id
        )
        return bool(found)

    await eventually(enrolled, what="tier-svc enrolling the new member")
    await eventually(account_opened, what="points-svc opening the member's account")


async def buy(topic_prefix: str, member_id: uuid.UUID, amount_minor: int) -> str:
    """An order system publishes a purchase; returns its order id."""
    order = purchase(member_id, amount_minor)
    await publish(topic_prefix, "orders", [order])
    order_id: str = order.payload.order_id  # type: ignore[attr-defined]
    return order_id


async def points_earned_for(topic_prefix: str, order_id: str) -> PointsEarned:
    """The points.earned points-svc published for the order, once it is on Kafka."""
    found: list[Envelope] = []

    async def published() -> bool:
        events = await points_events(topic_prefix, "points.earned")
        found[:] = [e for e in events if e.payload_as(PointsEarned).order_id == order_id]
        return bool(found)

    await eventually(published, what=f"points.earned for order {order_id}")
    assert len(found) == 1, f"order {order_id} was credited {len(found)} times"
    return found[0].payload_as(PointsEarned)


async def wait_for_gold_multiplier(points: Service, member_id: uuid.UUID) -> None:
    """points-svc has projected the member's tier.changed to gold."""

    async def projected() -> bool:
        tier = await scalar(
            points.app, "SELECT tier FROM tier_multipliers WHERE member_id = :m", m=member_id
        )
        return bool(tier == GOLD)

    await eventually(projected, what="points-svc projecting the gold tier")


async def wait_for_issued_coupon(campaign: Service, member_id: uuid.UUID) -> dict[str, Any]:
    """The member's only coupon, as the member sees it, once campaign-svc issued it."""
    coupons: list[dict[str, Any]] = []

    async def issued() -> bool:
        page = await campaign.get(f"/v1/members/{member_id}/coupons", campaign.as_member(member_id))
        coupons[:] = page["items"]
        return bool(coupons)

    await eventually(issued, what="the welcome-to-gold coupon")
    assert len(coupons) == 1, coupons
    return coupons[0]


async def redeem(campaign: Service, body: dict[str, Any], key: str) -> httpx.Response:
    headers = {**campaign.as_shop(), "Idempotency-Key": key}
    return await campaign.client.post("/v1/coupons/redeem", json=body, headers=headers)


# ---------- the journey ----------


async def test_gold_member_earns_more_and_redeems_the_welcome_coupon_once(
    services: Services, topic_prefix: str
) -> None:
    ladder = await tier_ladder(services.tier)
    basic_multiplier = Decimal(ladder["basic"]["multiplier"])
    gold_multiplier = Decimal(ladder[GOLD]["multiplier"])
    assert gold_multiplier > basic_multiplier, "gold must earn more for this test to mean much"
    campaign_id = await create_welcome_to_gold_campaign(services.campaign)

    member = await register(services.member.client, services.member.app)
    member_id = uuid.UUID(member["id"])
    await wait_until_known_everywhere(services, member_id)

    # A purchase while still basic (below silver, so no tier change) earns the base rate.
    first_amount = ladder["silver"]["threshold"] // 2
    first_order = await buy(topic_prefix, member_id, first_amount)
    before_gold = await points_earned_for(topic_prefix, first_order)
    assert before_gold.multiplier == basic_multiplier
    assert before_gold.points == expected_points(
        services.points_settings, first_amount, basic_multiplier
    )

    # The next purchase reaches the gold threshold (skipping silver): an upgrade at once.
    reaching_amount = ladder[GOLD]["threshold"] - first_amount
    reaching_order = await buy(topic_prefix, member_id, reaching_amount)
    # (Its own multiplier is not asserted: points-svc may see it before or after tier.changed.)
    reaching = await points_earned_for(topic_prefix, reaching_order)

    async def upgraded_to_gold() -> bool:
        return any(change.to_tier == GOLD for change in await tier_events(topic_prefix, member_id))

    await eventually(upgraded_to_gold, what="tier.changed to gold on Kafka")
    changes = await tier_events(topic_prefix, member_id)
    assert [(c.direction, c.from_tier, c.to_tier) for c in changes] == [
        ("initial", None, "basic"),
        ("upgrade", "basic", GOLD),
    ]
    assert changes[-1].multiplier == gold_multiplier
    assert changes[-1].qualifying_value == ladder[GOLD]["threshold"]
    await wait_for_gold_multiplier(services.points, member_id)

    # The first purchase as gold earns base x the gold multiplier.
    gold_amount = 12_345
    gold_order = await buy(topic_prefix, member_id, gold_amount)
    as_gold = await points_earned_for(topic_prefix, gold_order)
    assert as_gold.multiplier == gold_multiplier
    assert as_gold.points == expected_points(services.points_settings, gold_amount, gold_multiplier)
    assert as_gold.points > expected_points(services.points_settings, gold_amount, basic_multiplier)
    earned_in_total = before_gold.points + reaching.points + as_gold.points
    await wait_for_balance(
        services.points.client,
        services.points.app,
        member_id,
        "the balance over REST to show all three purchases",
        available=earned_in_total,
        lifetime_earned=earned_in_total,
    )

    # campaign-svc's welcome-to-gold campaign gave the member a coupon.
    coupon = await wait_for_issued_coupon(services.campaign, member_id)
    assert coupon["campaign_id"] == campaign_id
    assert coupon["status"] == "issued"

    # It redeems once; the same Idempotency-Key replays that answer; another key is refused.
    basket = {
        "code": coupon["code"],
        "member_id": str(member_id),
        "basket_total_minor": 8_000,
        "currency": "EUR",
        "order_id": f"o-{uuid.uuid4().hex[:12]}",
    }
    key = uuid.uuid4().hex
    redeemed = await redeem(services.campaign, basket, key)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["discount"]["total_minor"] == 800  # 10% of 80.00

    replayed = await redeem(services.campaign, basket, key)
    assert (replayed.status_code, replayed.json()) == (200, redeemed.json())

    again = await redeem(services.campaign, basket, uuid.uuid4().hex)
    assert again.status_code == 409, again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["type"].endswith("/already_redeemed")

    page = await services.campaign.get(
        f"/v1/members/{member_id}/coupons", services.campaign.as_member(member_id)
    )
    [after] = page["items"]
    assert (after["status"], after["order_id"]) == ("redeemed", basket["order_id"])
    assert len(await of_type(services.campaign.app, "coupon.redeemed")) == 1
