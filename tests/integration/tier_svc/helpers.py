"""Input events, publishing, and reads of what tier-svc did, shared by the tier-svc tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from memberflow_events.codec import decode, encode, headers_of
from memberflow_events.envelope import Envelope, EventPayload, new_event
from memberflow_events.payloads import (
    MemberRegistered,
    OrderLine,
    OrderPurchased,
    OrderRefunded,
    PointsEarned,
    PointsReversed,
    TierChanged,
)
from sqlalchemy import text

from tests.support import eventually, read_topic
from tests.support import member_token as member_token
from tests.support import ops as ops
from tests.support import shop as shop


@dataclass
class ShiftableClock:
    """The service's clock: real time moved by `offset` (so tests can jump ahead)."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def _event(
    payload: EventPayload, member_id: uuid.UUID | None, at: datetime, producer: str
) -> Envelope:
    return new_event(payload, producer=producer, member_id=member_id, occurred_at=at)


def registered(member_id: uuid.UUID, at: datetime | None = None) -> Envelope:
    return _event(MemberRegistered(), member_id, at or datetime.now(UTC), "member-svc")


def purchased(
    member_id: uuid.UUID | None, total_minor: int, at: datetime, order_id: str | None = None
) -> Envelope:
    payload = OrderPurchased(
        order_id=order_id or f"o-{uuid.uuid4().hex[:12]}",
        member_id=member_id,
        currency="EUR",
        total_minor=total_minor,
        lines=[OrderLine(sku="sku-1", category="shoes", quantity=1, unit_price_minor=total_minor)],
        channel="web",
    )
    return _event(payload, member_id, at, "order-system:test")


def refunded(member_id: uuid.UUID, order_id: str, amount_minor: int, at: datetime) -> Envelope:
    payload = OrderRefunded(
        order_id=order_id, refund_id=f"r-{uuid.uuid4().hex[:12]}", amount_minor=amount_minor
    )
    return _event(payload, member_id, at, "order-system:test")


def points_earned(member_id: uuid.UUID, points: int, order_id: str, at: datetime) -> Envelope:
    payload = PointsEarned(
        lot_id=uuid.uuid4(),
        points=points,
        source="order",
        order_id=order_id,
        available_at=at,
        expires_at=at + timedelta(days=365),
    )
    return _event(payload, member_id, at, "points-svc")


def points_reversed(member_id: uuid.UUID, points: int, order_id: str, at: datetime) -> Envelope:
    payload = PointsReversed(
        order_id=order_id, refund_id=f"r-{uuid.uuid4().hex[:8]}", points=points
    )
    return _event(payload, member_id, at, "points-svc")


def order_id_of(event: Envelope) -> str:
    order_id: Any = getattr(event.payload, "order_id", None)
    assert isinstance(order_id, str)
    return order_id


async def publish(producer: AIOKafkaProducer, topic_prefix: str, *events: Envelope) -> None:
    """Publish in order; the record key is the member (the order for a guest order)."""
    for event in events:
        await producer.send_and_wait(
            f"{topic_prefix}{event.payload.topic}",
            value=encode(event),
            key=event.key.encode(),
            headers=headers_of(event),
        )


async def tier_events(topic_prefix: str, member_id: uuid.UUID) -> list[TierChanged]:
    """The member's tier.changed events on Kafka, in the order they were published."""
    records = await read_topic(f"{topic_prefix}tiers")
    events = [decode(record.value) for record in sorted(records, key=lambda r: r.offset)]
    return [e.payload_as(TierChanged) for e in events if e.member_id == member_id]


async def wait_for_tier_events(
    topic_prefix: str, member_id: uuid.UUID, count: int, within: float = 30
) -> list[TierChanged]:
    """Exactly `count` tier.changed events of the member, once they are all published."""
    found: list[TierChanged] = []

    async def published() -> bool:
        found[:] = await tier_events(topic_prefix, member_id)
        return len(found) >= count

    await eventually(published, within=within, what=f"{count} tier.changed of {member_id}")
    return found


async def member_tier(
    client: httpx.AsyncClient, app: FastAPI, member_id: uuid.UUID
) -> dict[str, Any]:
    response = await client.get(f"/v1/members/{member_id}/tier", headers=shop(app))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for_value(
    client: httpx.AsyncClient, app: FastAPI, member_id: uuid.UUID, value: int
) -> dict[str, Any]:
    """The member's tier view once its qualifying value is `value`."""
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        response = await client.get(f"/v1/members/{member_id}/tier", headers=shop(app))
        if response.status_code != 200:
            return False
        seen.update(response.json())
        return bool(seen["qualifying_value"] == value)

    await eventually(reached, within=30, what=f"qualifying value {value} of {member_id}")
    return seen


async def scalar(app: FastAPI, sql: str, **params: Any) -> Any:
    async with app.state.runtime.engine.connect() as conn:
        return await conn.scalar(text(sql), params)
