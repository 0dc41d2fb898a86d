"""A running tier-svc against the real infrastructure, one fresh database and topics per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from memberflow_events.kafka import make_producer
from tier_svc.main import create_app
from tier_svc.settings import TierSettings

from tests.conftest import CreateDatabase
from tests.integration.tier_svc.helpers import ShiftableClock
from tests.support import KAFKA_BOOTSTRAP, REDIS_URL, running_service


@pytest.fixture
def clock() -> ShiftableClock:
    return ShiftableClock()


@pytest.fixture
async def app(create_database: CreateDatabase, topic_prefix: str, clock: ShiftableClock) -> FastAPI:
    settings = TierSettings(
        database_url=await create_database("tier"),
        topic_prefix=topic_prefix,
        kafka_bootstrap=KAFKA_BOOTSTRAP,
        redis_url=REDIS_URL,
    )
    return create_app(settings, clock=clock)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(app) as service:
        yield service


@pytest.fixture
async def producer() -> AsyncIterator[AIOKafkaProducer]:
    """Publishes input events the way order systems and member-svc do."""
    kafka = make_producer(KAFKA_BOOTSTRAP, "tier-svc-tests")
    await kafka.start()
    try:
        yield kafka
    finally:
        await kafka.stop()
