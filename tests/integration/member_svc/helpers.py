"""Requests and reads the member-svc integration tests share."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from memberflow_events.codec import decode
from memberflow_events.envelope import Envelope
from sqlalchemy import text

from tests.support import eventually, published_by, read_topic
from tests.support import member_token as member_token
from tests.support import ops as ops
from tests.support import shop as shop

PERSONAL = {
    "email": "Ada.Lovelace@Example.com",
    "phone": "+44 20 7946 0958",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "birthday": "1990-12-10",
}


def registration(**fields: Any) -> dict[str, Any]:
    """A valid registration body with a unique external id and email."""
    unique = uuid.uuid4().hex[:8]
    return {
        "external_id": f"shop-{unique}",
        "email": f"member-{unique}@example.com",
        "time_zone": "Europe/Berlin",
        **fields,
    }


async def post_registration(
    client: httpx.AsyncClient, app: FastAPI, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = {**shop(app), "Idempotency-Key": key or uuid.uuid4().hex}
    return await client.post("/v1/members", json=body, headers=headers)


async def register(client: httpx.AsyncClient, app: FastAPI, **fields: Any) -> dict[str, Any]:
    response = await post_registration(client, app, registration(**fields))
    assert response.status_code == 201, response.text
    member: dict[str, Any] = response.json()
    return member


async def member_events(topic_prefix: str, member_id: str | None = None) -> list[Envelope]:
    events = [decode(record.value) for record in await read_topic(f"{topic_prefix}members")]
    return [e for e in events if member_id is None or str(e.member_id) == member_id]


async def wait_for_event(topic_prefix: str, member_id: str, event_type: str) -> Envelope:
    """The first event of `event_type` about the member, once the relay published it."""
    found: list[Envelope] = []

    async def published() -> bool:
        events = await member_events(topic_prefix, member_id)
        found[:] = [e for e in events if e.type == event_type]
        return bool(found)

    await eventually(published, within=30, what=f"{event_type} of {member_id} on Kafka")
    return found[0]


async def count_rows(app: FastAPI, table: str) -> int:
    async with app.state.runtime.engine.connect() as conn:
        return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")))


async def published_types(app: FastAPI) -> list[str]:
    """The types of every event member-svc published, in the order it wrote them."""
    return [event.type for event in await published_by(app)]
