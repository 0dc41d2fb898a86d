"""A replay of the topics from the beginning decides the same; probes and OpenAPI answer."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import text
from tier_svc.main import create_app
from tier_svc.settings import TierSettings

from tests.conftest import CreateDatabase
from tests.integration.tier_svc.helpers import (
    days_ago,
    order_id_of,
    publish,
    purchased,
    refunded,
    registered,
    wait_for_value,
)
from tests.support import KAFKA_BOOTSTRAP, REDIS_URL, eventually, running_service


async def tier_states(app: FastAPI) -> list[Any]:
    async with app.state.runtime.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT member_id, tier_code, reached_at FROM member_tiers ORDER BY member_id")
        )
        return [tuple(row) for row in rows]


async def test_a_replay_from_the_beginning_gives_the_same_tiers(
    app: FastAPI,
    client: httpx.AsyncClient,
    producer: AIOKafkaProducer,
    topic_prefix: str,
    create_database: CreateDatabase,
) -> None:
    steady, refunder, late = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    big = purchased(refunder, 7_000_00, days_ago(40))
    early = purchased(late, 2_000_00, days_ago(20))
    await publish(
        producer,
        topic_prefix,
        registered(steady, days_ago(300)),
        purchased(steady, 1_100_00, days_ago(250)),
        purchased(steady, 4_000_00, days_ago(100)),
        registered(refunder, days_ago(60)),
        big,
        refunded(refunder, order_id_of(big), 3_000_00, days_ago(30)),
        refunded(late, order_id_of(early), 500_00, days_ago(10)),  # before its purchase
        early,
    )
    await wait_for_value(client, app, steady, 5_100_00)
    await wait_for_value(client, app, refunder, 4_000_00)
    await wait_for_value(client, app, late, 1_500_00)
    original = await tier_states(app)
    tiers = {member: tier for member, tier, _ in original}
    assert tiers == {steady: "gold", refunder: "silver", late: "silver"}

    replay_settings = TierSettings(
        service_name="tier-svc-replay",
        database_url=await create_database("tier_replay"),
        topic_prefix=topic_prefix,
        kafka_bootstrap=KAFKA_BOOTSTRAP,
        redis_url=REDIS_URL,
        run_relay=False,
        run_jobs=False,
    )
    replay = create_app(replay_settings)
    async with running_service(replay):
        replayed: list[Any] = []

        async def caught_up() -> bool:
            replayed[:] = await tier_states(replay)
            return replayed == original

        await eventually(caught_up, what=f"replayed states {replayed} == {original}")


async def test_probes_and_openapi(app: FastAPI, client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    schema = await client.get("/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/v1/members/{member_id}/tier", "/v1/tiers", "/v1/tiers/{code}"} <= set(paths)
    assert "/v1/tiers/distribution" in paths
