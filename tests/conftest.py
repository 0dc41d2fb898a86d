"""Fixtures shared by every test: the real local infrastructure, fresh databases, topics."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from memberflow_events.kafka import ensure_topics
from memberflow_events.topics import all_topics

from tests.support import (
    KAFKA_BOOTSTRAP,
    KAFKA_PORT,
    PG_PORT,
    REDIS_PORT,
    create_test_database,
    delete_topics,
    drop_test_databases,
)


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
        name, url = await create_test_database(label)
        created.append(name)
        return url

    yield create
    await drop_test_databases(created)


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
    await delete_topics([prefix])
