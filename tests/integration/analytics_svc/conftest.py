"""A running analytics-svc against the real infrastructure, one fresh database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from analytics_svc.main import create_app
from analytics_svc.settings import AnalyticsSettings
from fastapi import FastAPI

from tests.conftest import CreateDatabase
from tests.support import KAFKA_BOOTSTRAP, REDIS_URL, running_service


@pytest.fixture
async def settings(create_database: CreateDatabase, topic_prefix: str) -> AnalyticsSettings:
    return AnalyticsSettings(
        database_url=await create_database("analytics"),
        topic_prefix=topic_prefix,
        kafka_bootstrap=KAFKA_BOOTSTRAP,
        redis_url=REDIS_URL,
        run_jobs=False,  # tests run the jobs themselves, with their own clock
        relay_poll_interval_ms=20,
    )


@pytest.fixture
def app(settings: AnalyticsSettings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(app) as service:
        yield service
