"""Everything a running service holds: database, Redis, Kafka clients and background loops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from aiokafka import AIOKafkaConsumer
from fastapi import APIRouter
from memberflow_events.inbox import BatchHooks, Clock, Handler, InboxConsumer, utc_now
from memberflow_events.kafka import RenewingProducer, ensure_topics, make_consumer
from memberflow_events.outbox import OutboxRelay, asyncpg_dsn
from memberflow_events.topics import all_topics, physical
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from memberflow_platform.database import (
    ReadBatcher,
    ReadMany,
    ReadPool,
    load_migrations,
    make_engine,
    make_sessions,
    migrate,
    shared_migrations,
)
from memberflow_platform.jobs import PeriodicJob, run_periodically
from memberflow_platform.settings import ServiceSettings

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class ServiceDefinition:
    """What makes one service different from another; main.py builds exactly this."""

    settings: ServiceSettings
    title: str
    migrations_dir: Path
    routers: Sequence[APIRouter] = ()
    consumes: Sequence[str] = ()
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    jobs: Sequence[PeriodicJob] = ()
    clock: Clock = utc_now
    batch_hooks: BatchHooks | None = None


class Runtime:
    def __init__(self, definition: ServiceDefinition) -> None:
        self.definition = definition
        self.settings = definition.settings
        self.clock = definition.clock
        self.engine: AsyncEngine = make_engine(
            self.settings.database_url, self.settings.db_pool_size
        )
        self.sessions: async_sessionmaker[AsyncSession] = make_sessions(self.engine)
        self.read_pool: ReadPool | None = None
        self._read_batchers: dict[str, ReadBatcher[Any, Any]] = {}
        self.redis: Redis = Redis.from_url(self.settings.redis_url)
        self.producer = RenewingProducer(
            self.settings.kafka_bootstrap, f"{self.settings.service_name}-producer"
        )
        self.consumer: InboxConsumer | None = None
        self.relay: OutboxRelay | None = None
        self._kafka_consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._relay_task: asyncio.Task[None] | None = None
        self.failed: str | None = None

    def topic(self, logical: str) -> str:
        return physical(logical, self.settings.topic_prefix)

    async def start(self) -> None:
        settings = self.settings
        service_migrations = load_migrations(settings.service_name, self.definition.migrations_dir)
        await migrate(self.engine, [*shared_migrations(), *service_migrations])
        self.read_pool = await ReadPool.open(asyncpg_dsn(self.engine), settings.db_pool_size)
        if settings.create_topics:
            await ensure_topics(
                settings.kafka_bootstrap,
                [self.topic(t) for t in all_topics()],
                partitions=settings.topic_partitions,
            )
        await self.producer.start()
        if settings.run_relay:
            self.relay = OutboxRelay(
                service=settings.service_name,
                engine=self.engine,
                producer=self.producer,
                topic_prefix=settings.topic_prefix,
                batch_size=settings.relay_batch_size,
                poll_interval=settings.relay_poll_interval_ms / 1000,
            )
            self._relay_task = self._spawn("outbox-relay", self.relay.run)
        if settings.run_consumer and self.definition.consumes:
            self._kafka_consumer = make_consumer(
                settings.kafka_bootstrap,
                self.topic(settings.service_name),
                [self.topic(t) for t in self.definition.consumes],
                settings.consumer_batch_size,
            )
            await self._kafka_consumer.start()
            self.consumer = InboxConsumer(
                service=settings.service_name,
                sessions=self.sessions,
                consumer=self._kafka_consumer,
                dlq_producer=self.producer,
                handlers=self.definition.handlers,
                topic_prefix=settings.topic_prefix,
                batch_size=settings.consumer_batch_size,
                clock=self.clock,
                batch_hooks=self.definition.batch_hooks,
            )
            self._spawn("inbox-consumer", self.consumer.run)
        if settings.run_jobs:
            for job in self.definition.jobs:
                self._spawn(f"job:{job.name}", self._job_loop(job))

    def read_batcher(self, name: str, read_many: ReadMany[K, V]) -> ReadBatcher[K, V]:
        """The batcher of the hot read `name`, made with `read_many` on first use."""
        batcher = self._read_batchers.get(name)
        if batcher is None:
            assert self.read_pool is not None, "the runtime has not started"
            batcher = self._read_batchers[name] = ReadBatcher(self.read_pool, read_many)
        return cast(ReadBatcher[K, V], batcher)

    def _job_loop(self, job: PeriodicJob) -> Callable[[], Awaitable[None]]:
        return lambda: run_periodically(self, job, self._stopping)

    def _spawn(self, name: str, loop: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        async def supervised() -> None:
            backoff = 0.5
            while not self._stopping.is_set():
                try:
                    await loop()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s crashed; restarting in %.1fs", name, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)

        task = asyncio.create_task(supervised(), name=name)
        self._tasks.append(task)
        return task

    async def stop(self) -> None:
        """Graceful: the consumer finishes and commits its batch and the jobs their run;
        then the relay publishes what they and the last requests wrote, and stops."""
        self._stopping.set()
        if self.consumer is not None:
            self.consumer.stop()
        await _finish([task for task in self._tasks if task is not self._relay_task], 15)
        if self.relay is not None and self._relay_task is not None:
            self.relay.stop()
            await _finish([self._relay_task], 5)
        if self._kafka_consumer is not None:
            await self._kafka_consumer.stop()
        await self.producer.stop()
        await self.redis.aclose()
        if self.read_pool is not None:
            await self.read_pool.close()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, str]:
        """Each dependency's state; the service is ready when all say ok."""
        checks: dict[str, str] = {}
        try:
            async with self.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=2)
            checks["database"] = "ok"
        except Exception as error:
            checks["database"] = f"unavailable: {type(error).__name__}"
        try:
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), timeout=2)
            checks["kafka"] = "ok"
        except Exception as error:
            checks["kafka"] = f"unavailable: {type(error).__name__}"
        dead = [
            task.get_name() for task in self._tasks if task.done() and not self._stopping.is_set()
        ]
        checks["background"] = "ok" if not dead else f"stopped: {dead}"
        return checks


async def _finish(tasks: Sequence[asyncio.Task[None]], seconds: float) -> None:
    """Wait for the tasks to return; cancel those still running after `seconds`."""
    if not tasks:
        return
    _, late = await asyncio.wait(tasks, timeout=seconds)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
