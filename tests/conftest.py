"""Fixtures shared by every test: the real local infrastructure, fresh databases, topics."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from memberflow_events.kafka import ensure_topics
from memberflow_events.topics import all_topics

from tests.support import ADMIN_DSN, KAFKA_BOOTSTRAP, KAFKA_PORT, PG_PORT, REDIS_PORT


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def infra() -> None:
    """The real Kafka, PostgreSQL and Redis that `make infra-up` starts (never fakes)."""
    missing = [
        name
        for name, port in (("postgres", PG_PORT), ("kafka", KAFKA_PORT), ("redis", REDIS_PORT))
        if not _port_open(port)
    ]
    if missing:
        pytest.fail(f"infrastructure not running: {missing}; start it with `make infra-up`")


CreateDatabase = Callable[[str], Awaitable[str]]


@pytest.fixture
async def create_database(infra: None) -> AsyncIterator[CreateDatabase]:
    """Make fresh, empty databases; returns their SQLAlchemy URLs; drops them afterwards."""
    created: list[str] = []

    async def create(label: str) -> str:
        name = f"test_{label}_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        created.append(name)
        return f"postgresql+asyncpg://postgres@127.0.0.1:{PG_PORT}/{name}"

    yield create
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        for name in created:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def topic_prefix(infra: None) -> AsyncIterator[str]:
    """A private copy of every topic for one test, so tests never see each other's events.

    The topics are deleted afterwards: a full run creates thousands of partitions, and a
    broker that keeps them all runs out of file handles.
    """
    prefix = f"t{uuid.uuid4().hex[:10]}."
    topics = [prefix + topic for topic in all_topics()]
    await ensure_topics(KAFKA_BOOTSTRAP, topics, partitions=3)
    yield prefix
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, client_id="test-cleanup")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        await admin.delete_topics([t for t in existing if t.startswith(prefix)])
    finally:
        await admin.close()
