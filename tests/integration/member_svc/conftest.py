"""A running member-svc against the real infrastructure, one fresh database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from member_svc.main import create_app
from member_svc.settings import MemberSettings

from tests.conftest import CreateDatabase
from tests.support import KAFKA_BOOTSTRAP, REDIS_URL, running_service


@pytest.fixture
async def app(create_database: CreateDatabase, topic_prefix: str) -> FastAPI:
    settings = MemberSettings(
        database_url=await create_database("member"),
        topic_prefix=topic_prefix,
        kafka_bootstrap=KAFKA_BOOTSTRAP,
        redis_url=REDIS_URL,
    )
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(app) as service:
        yield service
