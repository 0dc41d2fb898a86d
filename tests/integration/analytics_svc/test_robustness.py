"""A batch with an event that can never be written: it is dead-lettered, the rest applies."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from tests.integration.analytics_svc.generate import T0, generate, publish, purchase
from tests.integration.analytics_svc.helpers import applied, scalar, table_contents
from tests.support import bearer, eventually, read_topic


async def test_unwritable_event_goes_to_the_dlq_and_the_batch_still_applies(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    history = generate(seed=41, members=15)
    member = history.members[0]
    # Valid by the schema, but PostgreSQL text cannot hold a NUL character.
    poison = purchase(member, T0 + timedelta(days=3), 1000, order_id="bad\x00order")
    events = [*history.events[:40], poison, *history.events[40:]]
    await publish(events, topic_prefix)
    good = [e for e in events if e.event_id != poison.event_id]
    await applied(app, good)

    letters: list[object] = []

    async def dead_lettered() -> bool:
        letters[:] = await read_topic(f"{topic_prefix}dlq.analytics-svc")
        return len(letters) == 1

    await eventually(dead_lettered, what="the poison event in the DLQ")
    (letter,) = letters
    headers = dict(getattr(letter, "headers", []))
    assert b"order.purchased handler failed" in headers["dlq.reason"]
    purchases = sum(1 for e in good if e.type == "order.purchased")
    assert await scalar(app, "SELECT count(*) FROM fact_purchases") == purchases
    assert (
        await scalar(app, "SELECT count(*) FROM inbox WHERE event_id = :e", e=poison.event_id) == 0
    )
    async with app.state.runtime.engine.connect() as conn:
        orders = await conn.scalar(
            text("SELECT count(*) FROM fact_purchases WHERE order_id LIKE 'bad%'")
        )
    assert orders == 0

    # The rebuild skips the same event, and rebuilds the same facts.
    before = await table_contents(app)
    response = await client.post("/v1/ops/rebuild", headers=bearer(app, "ops", "ops"))
    assert response.status_code == 200, response.text
    assert response.json()["invalid"] == 1
    assert response.json()["applied"] == len(good)
    assert await table_contents(app) == before
