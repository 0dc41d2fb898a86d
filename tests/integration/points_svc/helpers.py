"""Input events, requests and reads the points-svc integration tests share."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from memberflow_events.codec import decode
from memberflow_events.envelope import Envelope, EventPayload, new_event
from memberflow_events.payloads import (
    BonusAwarded,
    OrderLine,
    OrderPurchased,
    OrderRefunded,
    TierChanged,
)
from points_svc.reconcile import check_all
from sqlalchemy import text

from tests.support import eventually, read_topic
from tests.support import member_token as member_token
from tests.support import ops as ops
from tests.support import publish as publish
from tests.support import shop as shop


def now() -> datetime:
    return datetime.now(UTC)


# ---------- input events ----------


def purchase(
    member_id: uuid.UUID | None,
    total_minor: int,
    *,
    order_id: str | None = None,
    occurred_at: datetime | None = None,
    category: str = "books",
    lines: Sequence[OrderLine] | None = None,
) -> Envelope:
    payload = OrderPurchased(
        order_id=order_id or f"o-{uuid.uuid4().hex[:12]}",
        member_id=member_id,
        currency="EUR",
        total_minor=total_minor,
        lines=list(lines)
        if lines is not None
        else [OrderLine(sku="sku-1", category=category, quantity=1, unit_price_minor=total_minor)],
        channel="web",
    )
    return _external(payload, member_id, occurred_at)


def refund(
    member_id: uuid.UUID,
    order_id: str,
    amount_minor: int,
    *,
    refund_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    payload = OrderRefunded(
        order_id=order_id,
        refund_id=refund_id or f"r-{uuid.uuid4().hex[:12]}",
        amount_minor=amount_minor,
    )
    return _external(payload, member_id, occurred_at)


def tier_changed(member_id: uuid.UUID, to_tier: str, multiplier: str) -> Envelope:
    payload = TierChanged(
        from_tier="basic",
        to_tier=to_tier,
        direction="upgrade",
        reason="threshold reached",
        qualifying_value=500_000,
        multiplier=Decimal(multiplier),
    )
    return new_event(payload, producer="tier-svc", member_id=member_id, occurred_at=now())


def bonus(member_id: uuid.UUID, points: int, award_id: uuid.UUID | None = None) -> Envelope:
    payload = BonusAwarded(
        award_id=award_id or uuid.uuid4(),
        campaign_id=uuid.uuid4(),
        points=points,
        reason="welcome",
    )
    return new_event(payload, producer="campaign-svc", member_id=member_id, occurred_at=now())


def _external(
    payload: EventPayload, member_id: uuid.UUID | None, occurred_at: datetime | None
) -> Envelope:
    return new_event(
        payload,
        producer="order-system:test",
        member_id=member_id,
        occurred_at=occurred_at or now(),
    )


# ---------- reads ----------


async def get_balance(
    client: httpx.AsyncClient, app: FastAPI, member_id: uuid.UUID
) -> dict[str, Any]:
    response = await client.get(f"/v1/members/{member_id}/balance", headers=shop(app))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for_balance(
    client: httpx.AsyncClient,
    app: FastAPI,
    member_id: uuid.UUID,
    what: str,
    **expected: int,
) -> dict[str, Any]:
    """Poll the balance until the given fields have the expected values."""
    latest: dict[str, Any] = {}

    async def check() -> bool:
        nonlocal latest
        latest = await get_balance(client, app, member_id)
        return all(latest[name] == value for name, value in expected.items())

    await eventually(check, within=30, what=f"{what} (last balance {latest})")
    return latest


async def points_events(topic_prefix: str, event_type: str | None = None) -> list[Envelope]:
    """Every event points-svc published so far (optionally of one type)."""
    events = [decode(record.value) for record in await read_topic(f"{topic_prefix}points")]
    return [event for event in events if event_type is None or event.type == event_type]


async def wait_for_points_events(
    topic_prefix: str, event_type: str, count: int, within: float = 30
) -> list[Envelope]:
    found: list[Envelope] = []

    async def check() -> bool:
        nonlocal found
        found = await points_events(topic_prefix, event_type)
        return len(found) >= count

    await eventually(check, within=within, what=f"{count} {event_type} event(s)")
    return found


async def scalar(app: FastAPI, sql: str, **params: Any) -> Any:
    async with app.state.runtime.engine.connect() as conn:
        return await conn.scalar(text(sql), params)


async def violations(app: FastAPI) -> list[str]:
    found = await check_all(app.state.runtime.sessions)
    return [f"{a.member_id}: {v.rule} {v.detail}" for a in found for v in a.violations]
