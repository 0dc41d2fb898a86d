"""Coupon REST: a member's coupons, validation against a basket, redemption once only."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from campaign_svc import repository
from campaign_svc.domain import CouponTerms, generate_coupon_code, issue_coupon
from campaign_svc.jobs import expire_coupons
from fastapi import FastAPI

from tests.integration.campaign_svc.helpers import (
    create_campaign,
    member_token,
    ops,
    sessions,
    shop,
    wait_published,
    welcome_campaign,
)

pytestmark = pytest.mark.infra

TEN_PERCENT = {"kind": "percent", "value": 10, "min_spend_minor": 5000, "currency": "EUR"}


async def _issue(
    client: httpx.AsyncClient,
    app: FastAPI,
    member_id: uuid.UUID,
    terms: dict[str, Any] = TEN_PERCENT,
    valid_for: timedelta = timedelta(days=30),
) -> str:
    """A coupon issued directly (as a campaign would), valid from an hour ago."""
    campaign = await create_campaign(client, app, welcome_campaign())
    now = datetime.now(UTC) - timedelta(hours=1)
    coupon = issue_coupon(
        coupon_id=uuid.uuid4(),
        campaign_id=uuid.UUID(campaign["campaign_id"]),
        member_id=member_id,
        code=generate_coupon_code(),
        terms=CouponTerms.model_validate(terms),
        valid_from=now,
        valid_until=now + valid_for,
    )
    async with sessions(app)() as session, session.begin():
        assert await repository.insert_coupon(session, coupon, now)
    return coupon.code


def _basket(code: str, member_id: uuid.UUID, total: int = 8000, **more: Any) -> dict[str, Any]:
    return {
        "code": code,
        "member_id": str(member_id),
        "basket_total_minor": total,
        "currency": "EUR",
        **more,
    }


async def _redeem(
    client: httpx.AsyncClient, app: FastAPI, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = {**shop(app), "Idempotency-Key": key or uuid.uuid4().hex}
    return await client.post("/v1/coupons/redeem", json=body, headers=headers)


async def test_a_member_lists_its_own_coupons_only(client: httpx.AsyncClient, app: FastAPI) -> None:
    member, other = uuid.uuid4(), uuid.uuid4()
    code = await _issue(client, app, member)

    own = await client.get(f"/v1/members/{member}/coupons", headers=member_token(app, member))
    assert own.status_code == 200
    [coupon] = own.json()["items"]
    assert coupon["code"] == code
    assert coupon["status"] == "issued"
    assert coupon["min_spend_minor"] == 5000
    for headers in (shop(app), ops(app)):
        response = await client.get(f"/v1/members/{member}/coupons", headers=headers)
        assert response.status_code == 200
    stranger = await client.get(f"/v1/members/{member}/coupons", headers=member_token(app, other))
    assert stranger.status_code == 403
    anonymous = await client.get(f"/v1/members/{member}/coupons")
    assert anonymous.status_code == 401


async def test_validate_gives_the_discount_or_the_reason(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    member = uuid.uuid4()
    code = await _issue(client, app, member)
    typed = code.lower().replace("-", " ")

    async def validate(body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post("/v1/coupons/validate", json=body, headers=shop(app))
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    ok = await validate(_basket(typed, member, 8099, shipping_minor=500))
    assert ok["valid"] is True
    assert ok["discount"] == {"items_minor": 809, "shipping_minor": 0, "total_minor": 809}
    assert (await validate(_basket(code, member, 4999)))["reason"] == "below_minimum_spend"
    assert (await validate(_basket(code, uuid.uuid4())))["reason"] == "not_owner"
    assert (await validate(_basket(code, member, currency="USD")))["reason"] == "currency_mismatch"
    wrong_check = code[:-1] + ("2" if code[-1] != "2" else "3")
    assert (await validate(_basket(wrong_check, member)))["reason"] == "malformed_code"
    assert (await validate(_basket(generate_coupon_code(), member)))["reason"] == "unknown_code"
    member_self = await client.post(
        "/v1/coupons/validate", json=_basket(code, member), headers=member_token(app, member)
    )
    assert member_self.status_code == 200
    someone_else = await client.post(
        "/v1/coupons/validate", json=_basket(code, member), headers=member_token(app, uuid.uuid4())
    )
    assert someone_else.status_code == 403


async def test_a_coupon_redeems_once_and_only_once(
    client: httpx.AsyncClient, app: FastAPI, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    code = await _issue(client, app, member)
    body = _basket(code, member, 8000, order_id="order-1")

    first = await _redeem(client, app, body, key="checkout-1")
    replay = await _redeem(client, app, body, key="checkout-1")
    again = await _redeem(client, app, body, key="checkout-2")

    assert first.status_code == 200, first.text
    assert first.json()["discount"]["total_minor"] == 800
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert again.status_code == 409
    assert again.json()["type"].endswith("/already_redeemed")
    redeemed = await wait_published(topic_prefix, "coupon.redeemed", 1)
    assert len(redeemed) == 1
    assert redeemed[0].member_id == member
    assert redeemed[0].payload.discount_minor == 800  # type: ignore[attr-defined]
    assert redeemed[0].payload.order_id == "order-1"  # type: ignore[attr-defined]
    listed = await client.get(f"/v1/members/{member}/coupons", headers=shop(app))
    assert listed.json()["items"][0]["status"] == "redeemed"


async def test_concurrent_redemptions_exactly_one_succeeds(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    member = uuid.uuid4()
    code = await _issue(client, app, member)

    responses = await asyncio.gather(
        *(_redeem(client, app, _basket(code, member)) for _ in range(8))
    )

    assert sorted(r.status_code for r in responses) == [200] + [409] * 7


async def test_redemption_refusals(client: httpx.AsyncClient, app: FastAPI) -> None:
    member = uuid.uuid4()
    code = await _issue(client, app, member)
    expired = await _issue(client, app, member, valid_for=timedelta(minutes=30))

    below = await _redeem(client, app, _basket(code, member, 4999))
    assert below.status_code == 422
    assert below.json()["errors"] == [
        {"field": "basket_total_minor", "message": "below_minimum_spend"}
    ]
    not_owner = await _redeem(client, app, _basket(code, uuid.uuid4()))
    assert not_owner.status_code == 403
    assert not_owner.json()["type"].endswith("/not_owner")
    late = await _redeem(client, app, _basket(expired, member))
    assert late.status_code == 409
    assert late.json()["type"].endswith("/expired")
    unknown = await _redeem(client, app, _basket(generate_coupon_code(), member))
    assert unknown.status_code == 404
    malformed = await _redeem(client, app, _basket("NOT-A-CODE", member))
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "code"
    negative = await _redeem(client, app, _basket(code, member, -1))
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["field"] == "basket_total_minor"
    no_key = await client.post("/v1/coupons/redeem", json=_basket(code, member), headers=shop(app))
    assert no_key.status_code == 400
    ops_only = await client.post(
        "/v1/coupons/redeem",
        json=_basket(code, member),
        headers={**ops(app), "Idempotency-Key": "x"},
    )
    assert ops_only.status_code == 403
    # refusals are not stored: after all that the coupon still redeems
    ok = await _redeem(client, app, _basket(code, member, 5000), key="after-refusals")
    assert ok.status_code == 200
    assert ok.json()["discount"]["total_minor"] == 500


async def test_expired_coupons_read_as_expired_before_and_after_the_expiry_job(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    member = uuid.uuid4()
    await _issue(client, app, member, valid_for=timedelta(minutes=30))
    await _issue(client, app, member)

    async def statuses() -> list[str]:
        listed = await client.get(f"/v1/members/{member}/coupons", headers=shop(app))
        return [coupon["status"] for coupon in listed.json()["items"]]

    assert await statuses() == ["expired", "issued"]
    assert await expire_coupons(sessions(app), datetime.now(UTC)) == 1
    assert await expire_coupons(sessions(app), datetime.now(UTC)) == 0
    assert await statuses() == ["expired", "issued"]
