"""Reads that wait together share one statement, and each still sees what was committed
before it was asked for (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from memberflow_platform.database import ReadBatcher, ReadPool

from tests.conftest import CreateDatabase

_VALUES = (
    "SELECT v FROM unnest($1::int[]) WITH ORDINALITY AS k(key, n)"
    " LEFT JOIN kv USING (key) ORDER BY n"
)


@pytest.fixture
async def pool(create_database: CreateDatabase) -> AsyncIterator[ReadPool]:
    url = await create_database("read_batcher")
    opened = await ReadPool.open(url.replace("+asyncpg", "", 1), 3)
    async with opened.acquire() as connection:
        await connection.execute("CREATE TABLE kv (key int PRIMARY KEY, v text NOT NULL)")
        await connection.execute("INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 300) g")
    yield opened
    await opened.close()


class Recorder:
    """A read_many that answers from the kv table and records each batch's keys."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.hold: asyncio.Event | None = None

    async def __call__(self, connection: asyncpg.Connection, keys: list[int]) -> list[str | None]:
        self.batches.append(keys)
        values = [row["v"] for row in await connection.fetch(_VALUES, keys)]
        if self.hold is not None:  # answered only once the test lets it
            await self.hold.wait()
        return values


async def test_reads_waiting_together_share_one_statement(pool: ReadPool) -> None:
    recorder = Recorder()
    batcher = ReadBatcher(pool, recorder)
    keys = [5, 7, 5, 999, 1, 7]
    values = await asyncio.gather(*(batcher.read(key) for key in keys))
    assert values == ["v5", "v7", "v5", None, "v1", "v7"]
    assert recorder.batches == [[5, 7, 999, 1]]  # one statement, each key once


async def test_a_batch_holds_at_most_max_keys(pool: ReadPool) -> None:
    recorder = Recorder()
    batcher = ReadBatcher(pool, recorder, max_keys=100)
    values = await asyncio.gather(*(batcher.read(key) for key in range(1, 251)))
    assert values == [f"v{key}" for key in range(1, 251)]
    assert sorted(len(batch) for batch in recorder.batches) == [50, 100, 100]


async def test_a_read_asked_during_a_batch_sees_what_was_committed_before_it(
    pool: ReadPool,
) -> None:
    recorder = Recorder()
    recorder.hold = asyncio.Event()
    batcher = ReadBatcher(pool, recorder)
    first = asyncio.create_task(batcher.read(1))
    await asyncio.sleep(0.05)  # the first batch has taken its snapshot and is held
    async with pool.acquire() as connection:
        await connection.execute("UPDATE kv SET v = 'changed' WHERE key = 1")
    second = asyncio.create_task(batcher.read(1))
    await asyncio.sleep(0.05)
    recorder.hold.set()
    assert await first == "v1"
    assert await second == "changed"
    assert recorder.batches == [[1], [1]]


async def test_a_failed_batch_fails_each_of_its_reads_and_the_next_batch_works(
    pool: ReadPool,
) -> None:
    async def broken(connection: asyncpg.Connection, keys: list[int]) -> list[str]:
        await connection.fetch("SELECT no_such_column FROM kv")
        return []

    batcher = ReadBatcher(pool, broken)
    results = await asyncio.gather(batcher.read(1), batcher.read(2), return_exceptions=True)
    assert all(isinstance(result, asyncpg.UndefinedColumnError) for result in results)
    working = ReadBatcher(pool, Recorder())
    assert await working.read(3) == "v3"


async def test_a_wrong_number_of_answers_fails_the_reads(pool: ReadPool) -> None:
    async def short(connection: asyncpg.Connection, keys: list[int]) -> list[str]:
        return ["only one"]

    batcher = ReadBatcher(pool, short)
    results = await asyncio.gather(batcher.read(1), batcher.read(2), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)
    assert "1 values for 2 keys" in str(results[0])


async def test_a_cancelled_read_leaves_the_others_of_its_batch_answered(pool: ReadPool) -> None:
    recorder = Recorder()
    recorder.hold = asyncio.Event()
    batcher = ReadBatcher(pool, recorder)
    cancelled = asyncio.create_task(batcher.read(1))
    kept = asyncio.create_task(batcher.read(2))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    recorder.hold.set()
    assert await kept == "v2"
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert recorder.batches == [[1, 2]]
