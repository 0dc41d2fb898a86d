"""Helpers for tests: where the local infrastructure listens, and polling."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from memberflow_events.codec import decode, encode
from memberflow_events.envelope import Envelope
from memberflow_events.kafka import kafka_admin, make_producer, partitions_of
from memberflow_events.topics import BUSINESS_TOPICS, physical
from memberflow_platform.auth import MEMBER_SELF, OPS, STOREFRONT
from sqlalchemy import text

PG_PORT = int(os.environ.get("MF_PG_PORT", "15432"))
KAFKA_PORT = int(os.environ.get("MF_KAFKA_PORT", "19092"))
REDIS_PORT = int(os.environ.get("MF_REDIS_PORT", "16379"))
KAFKA_BOOTSTRAP = f"127.0.0.1:{KAFKA_PORT}"
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
ADMIN_DSN = f"postgresql://postgres@127.0.0.1:{PG_PORT}/postgres"


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 30.0, what: str = "condition"
) -> None:
    """Poll until `check` holds; fail naming what never happened."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.1)


async def read_topic(topic: str, bootstrap: str = KAFKA_BOOTSTRAP) -> list[Any]:
    """Every record currently in a topic, from the beginning, without committing offsets."""
    return await read_topics([topic], bootstrap)


async def read_topics(topics: Sequence[str], bootstrap: str = KAFKA_BOOTSTRAP) -> list[Any]:
    """Every record currently in the topics, from the beginning, without committing offsets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=f"reader-{uuid.uuid4().hex}"
    )
    await consumer.start()
    try:
        partitions = [p for topic in topics for p in await partitions_of(bootstrap, topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
        return records
    finally:
        await consumer.stop()


async def published_by(app: FastAPI) -> list[Envelope]:
    """Every event the app's service has published, in the order it wrote them (event ids
    are uuid7s, increasing within a process), once its relay has emptied its outbox."""
    runtime = app.state.runtime
    service, prefix = runtime.settings.service_name, runtime.settings.topic_prefix

    async def outbox_empty() -> bool:
        async with runtime.engine.connect() as conn:
            return int(await conn.scalar(text("SELECT count(*) FROM outbox"))) == 0

    await eventually(outbox_empty, what=f"{service}'s outbox published")
    records = await read_topics([physical(topic, prefix) for topic in BUSINESS_TOPICS])
    events = [decode(record.value) for record in records]
    return sorted((e for e in events if e.producer == service), key=lambda e: e.event_id)


@contextlib.asynccontextmanager
async def running_service(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Start a service in-process (migrations, relay, consumer, jobs) and talk HTTP to it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


def bearer(
    app: FastAPI, subject: str, *scopes: str, ttl: timedelta = timedelta(hours=1)
) -> dict[str, str]:
    """Authorization header with a token the service accepts."""
    token = app.state.token_verifier.issue(subject, scopes, ttl=ttl)
    return {"Authorization": f"Bearer {token}"}


def ops(app: FastAPI) -> dict[str, str]:
    return bearer(app, "alice", OPS)


def shop(app: FastAPI) -> dict[str, str]:
    return bearer(app, "shop", STOREFRONT)


def member_token(app: FastAPI, member_id: uuid.UUID | str) -> dict[str, str]:
    return bearer(app, str(member_id), MEMBER_SELF)


async def publish(topic_prefix: str, topic: str, events: Sequence[Envelope]) -> None:
    """Produce events in order as an external system would (key = member id, or order id)."""
    producer = make_producer(KAFKA_BOOTSTRAP, "test-producer")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                f"{topic_prefix}{topic}", encode(event), key=event.key.encode()
            )
    finally:
        await producer.stop()


def build_service_app(service: str, database_url: str, topic_prefix: str = "") -> FastAPI:
    """A service's app as the integration fixtures build it (jobs run only on demand)."""
    from analytics_svc.main import create_app as create_analytics_app
    from analytics_svc.settings import AnalyticsSettings
    from campaign_svc.main import create_app as create_campaign_app
    from campaign_svc.settings import CampaignSettings
    from member_svc.main import create_app as create_member_app
    from member_svc.settings import MemberSettings
    from points_svc.main import create_app as create_points_app
    from points_svc.settings import PointsSettings
    from tier_svc.main import create_app as create_tier_app
    from tier_svc.settings import TierSettings

    common: dict[str, Any] = {
        "database_url": database_url,
        "topic_prefix": topic_prefix,
        "kafka_bootstrap": KAFKA_BOOTSTRAP,
        "redis_url": REDIS_URL,
        "run_jobs": False,
    }
    if service == "member-svc":
        return create_member_app(MemberSettings(**common))
    if service == "points-svc":
        return create_points_app(PointsSettings(**common))
    if service == "tier-svc":
        return create_tier_app(TierSettings(**common))
    if service == "campaign-svc":
        return create_campaign_app(CampaignSettings(**common))
    if service == "analytics-svc":
        return create_analytics_app(AnalyticsSettings(**common))
    raise AssertionError(f"unknown service {service}")


# ---------- scratch databases and topics ----------


async def create_test_database(label: str) -> tuple[str, str]:
    """A fresh, empty database: its name and its SQLAlchemy URL."""
    name = f"test_{label}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name, f"postgresql+asyncpg://postgres@127.0.0.1:{PG_PORT}/{name}"


async def drop_test_databases(names: Sequence[str]) -> None:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def delete_topics(prefixes: Sequence[str]) -> None:
    """Every topic whose name starts with one of `prefixes`."""
    async with kafka_admin(KAFKA_BOOTSTRAP, "test-cleanup") as admin:
        existing = await admin.list_topics()
        doomed = [t for t in existing if any(t.startswith(p) for p in prefixes)]
        if doomed:
            await admin.delete_topics(doomed)


_UUID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)


def without_ids(text: str) -> str:
    """`text` with every uuid replaced by <id>: random hex can spell a name ("ada")."""
    return _UUID.sub("<id>", text)
