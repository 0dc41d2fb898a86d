"""A running campaign-svc against the real infrastructure, one fresh database per test.

Periodic jobs are off: tests call the job functions with an injected `now`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from campaign_svc.main import create_app
from campaign_svc.settings import CampaignSettings
from fastapi import FastAPI

from tests.conftest import CreateDatabase
from tests.support import KAFKA_BOOTSTRAP, REDIS_URL, running_service


@pytest.fixture
async def app(create_database: CreateDatabase, topic_prefix: str) -> FastAPI:
    settings = CampaignSettings(
        database_url=await create_database("campaign"),
        topic_prefix=topic_prefix,
        kafka_bootstrap=KAFKA_BOOTSTRAP,
        redis_url=REDIS_URL,
        run_jobs=False,
    )
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(app) as service:
        yield service
