"""The read pool hands out connections in the order they were asked for (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import time

import pytest
from memberflow_events.errors import is_transient
from memberflow_platform.database import ReadPool

from tests.conftest import CreateDatabase

WORKERS = 20
ROUNDS = 100


async def _open(
    create_database: CreateDatabase, label: str, size: int, wait_seconds: float = 5.0
) -> ReadPool:
    """A read pool on a fresh database (asyncpg's DSN: the URL without `+asyncpg`)."""
    url = await create_database(label)
    return await ReadPool.open(url.replace("+asyncpg", "", 1), size, wait_seconds)


async def test_no_request_is_overtaken_by_one_that_asked_later(
    create_database: CreateDatabase,
) -> None:
    pool = await _open(create_database, "read_pool", 2)
    granted = 0
    most_overtaken = 0

    async def reader() -> None:
        nonlocal granted, most_overtaken
        for _ in range(ROUNDS):
            granted_before = granted
            async with pool.acquire() as connection:
                most_overtaken = max(most_overtaken, granted - granted_before)
                granted += 1
                assert await connection.fetchval("SELECT 1") == 1
            await asyncio.sleep(0)

    try:
        await asyncio.gather(*(reader() for _ in range(WORKERS)))
    finally:
        await pool.close()
    assert granted == WORKERS * ROUNDS
    # In arrival order, a request waits at most for every other reader once. asyncpg's
    # own queue let newcomers take released connections: 34 to 101 grants went to others
    # while one request waited (MagicStack/asyncpg#1247).
    assert most_overtaken <= WORKERS - 1


async def test_a_cancelled_wait_gives_its_turn_back(create_database: CreateDatabase) -> None:
    pool = await _open(create_database, "read_pool_cancel", 1)
    try:
        async with pool.acquire():
            waiting = asyncio.create_task(pool.acquire().__aenter__())
            await asyncio.sleep(0.05)
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)

        async def read() -> int:
            async with pool.acquire() as connection:
                return int(await connection.fetchval("SELECT 2"))

        assert await asyncio.wait_for(read(), 5) == 2  # not stuck behind the cancelled wait
    finally:
        await pool.close()


async def test_no_wait_without_end_for_a_connection_or_an_answer(
    create_database: CreateDatabase,
) -> None:
    pool = await _open(create_database, "read_pool_wait", 1, wait_seconds=0.3)
    try:
        async with pool.acquire():
            started = time.monotonic()
            with pytest.raises(TimeoutError) as waited:
                async with pool.acquire():
                    pass
            assert time.monotonic() - started < 3
        assert is_transient(waited.value)  # the API answers 503 with Retry-After

        async with pool.acquire() as connection:
            with pytest.raises(TimeoutError) as answered:
                await connection.execute("SELECT pg_sleep(5)")
        assert is_transient(answered.value)

        async with pool.acquire() as connection:  # the turn and the connection came back
            assert await connection.fetchval("SELECT 3") == 3
    finally:
        await pool.close()
