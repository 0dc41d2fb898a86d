"""A running points-svc against the real infrastructure, one fresh database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from points_svc.main import create_app
from points_svc.settings import PointsSettings

from tests.conftest import CreateDatabase
from tests.support import KAFKA_BOOTSTRAP, REDIS_URL, running_service

MakeApp = Callable[..., Awaitable[FastAPI]]


@pytest.fixture
async def make_app(create_database: CreateDatabase, topic_prefix: str) -> MakeApp:
    """points-svc with test settings; jobs are run by the tests with an injected `now`.

    Pass `database_url` to restart a service on the database of an earlier one."""

    async def make(**overrides: Any) -> FastAPI:
        database_url = overrides.pop("database_url", None) or await create_database("points")
        settings = PointsSettings(
            database_url=database_url,
            topic_prefix=topic_prefix,
            kafka_bootstrap=KAFKA_BOOTSTRAP,
            redis_url=REDIS_URL,
            run_jobs=False,
            db_pool_size=20,
            **overrides,
        )
        return create_app(settings)

    return make


@pytest.fixture
async def app(make_app: MakeApp) -> FastAPI:
    return await make_app()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(app) as service:
        yield service
