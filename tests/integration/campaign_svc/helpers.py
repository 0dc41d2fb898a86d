"""Events, campaigns and reads the campaign-svc integration tests share."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from campaign_svc.domain import MemberProjection
from campaign_svc.repository import get_member
from fastapi import FastAPI
from memberflow_events.codec import decode
from memberflow_events.envelope import Envelope, EventPayload, new_event
from memberflow_events.payloads import MemberRegistered, TierChanged
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support import eventually, published_by, read_topic
from tests.support import member_token as member_token
from tests.support import ops as ops
from tests.support import publish as publish
from tests.support import shop as shop

Direction = Literal["upgrade", "downgrade", "initial"]


def sessions(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = app.state.runtime.sessions
    return maker


# ---------- events in ----------


def event(payload: EventPayload, member_id: uuid.UUID, producer: str = "test") -> Envelope:
    return new_event(payload, producer=producer, member_id=member_id, occurred_at=datetime.now(UTC))


def registered(member_id: uuid.UUID, **fields: Any) -> Envelope:
    return event(MemberRegistered(**fields), member_id, "member-svc")


def tier_changed(member_id: uuid.UUID, to_tier: str, direction: Direction = "upgrade") -> Envelope:
    payload = TierChanged(
        from_tier="basic",
        to_tier=to_tier,
        direction=direction,
        reason="threshold reached",
        qualifying_value=500_000,
    )
    return event(payload, member_id, "tier-svc")


async def applied_count(app: FastAPI) -> int:
    """How many events the inbox consumer has applied."""
    async with sessions(app)() as session:
        return int(await session.scalar(text("SELECT count(*) FROM inbox")) or 0)


async def wait_applied(app: FastAPI, count: int, within: float = 60) -> None:
    async def done() -> bool:
        return await applied_count(app) >= count

    await eventually(done, within=within, what=f"{count} events applied")


async def projection(app: FastAPI, member_id: uuid.UUID) -> MemberProjection | None:
    async with sessions(app)() as session:
        return await get_member(session, member_id)


# ---------- events out ----------


async def of_type(app: FastAPI, event_type: str) -> list[Envelope]:
    """The events of a type campaign-svc published, in the order it wrote them."""
    return [e for e in await published_by(app) if e.type == event_type]


async def published(topic_prefix: str, event_type: str | None = None) -> list[Envelope]:
    events = [decode(r.value) for r in await read_topic(f"{topic_prefix}campaigns")]
    return [e for e in events if event_type is None or e.type == event_type]


async def wait_published(topic_prefix: str, event_type: str, count: int) -> list[Envelope]:
    found: list[Envelope] = []

    async def enough() -> bool:
        found[:] = await published(topic_prefix, event_type)
        return len(found) >= count

    await eventually(enough, within=60, what=f"{count} {event_type} on Kafka")
    return found


# ---------- campaigns ----------


def welcome_campaign(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Welcome",
        "trigger": {"kind": "member_registered"},
        "actions": [
            {
                "kind": "coupon",
                "terms": {"kind": "percent", "value": 10},
                "valid_days": 30,
            }
        ],
    }
    body.update(overrides)
    return body


async def create_campaign(
    client: httpx.AsyncClient, app: FastAPI, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/v1/campaigns", json=body, headers=ops(app))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
