"""A minimal producer service and consumer service wired with the shared plumbing.

The source database holds an outbox; the sink applies `member.activity` events to a
`visits` table through the inbox. A visit of kind "poison" violates an invariant after
writing, so a test can see that the failed effect is rolled back and dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from memberflow_events.envelope import Envelope, new_event
from memberflow_events.inbox import BatchHooks, BatchState, HandlerContext, InboxConsumer
from memberflow_events.kafka import RenewingProducer, ensure_topics, make_consumer
from memberflow_events.outbox import OutboxRelay, add_to_outbox
from memberflow_events.payloads import MemberActivity
from memberflow_platform.database import make_engine, make_sessions, migrate, shared_migrations
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests.support import KAFKA_BOOTSTRAP

SINK = "sink-svc"
BROKEN_KINDS = {"poison"}  # kinds whose handling fails, as if the handler had a bug


async def count_visit(ctx: HandlerContext, event: Envelope) -> None:
    await ctx.session.execute(
        text(
            "INSERT INTO visits (member_id, n) VALUES (:m, 1)"
            " ON CONFLICT (member_id) DO UPDATE SET n = visits.n + 1"
        ),
        {"m": event.member_id},
    )
    kind = event.payload_as(MemberActivity).kind
    if kind in BROKEN_KINDS:
        raise ValueError(f"invariant violated: {kind} visit")


async def count_visit_buffered(ctx: HandlerContext, event: Envelope) -> None:
    """The same effect as count_visit, buffered in the batch state and written by flush."""
    counts: dict[UUID, int] = ctx.batch.setdefault("visits", {})
    assert event.member_id is not None
    counts[event.member_id] = counts.get(event.member_id, 0) + 1


async def prepare_visits(
    session: AsyncSession, events: Sequence[Envelope], state: BatchState
) -> None:
    state["prepared"] = len(events)


async def flush_visits(session: AsyncSession, state: BatchState) -> None:
    counts: dict[UUID, int] = state.get("visits", {})
    if counts:
        await session.execute(
            text(
                "INSERT INTO visits (member_id, n) VALUES (:m, :n)"
                " ON CONFLICT (member_id) DO UPDATE SET n = visits.n + EXCLUDED.n"
            ),
            [{"m": member, "n": n} for member, n in counts.items()],
        )


BUFFERED = BatchHooks(prepare=prepare_visits, flush=flush_visits)


def activity(member_id: UUID, kind: str = "visit") -> Envelope:
    return new_event(
        MemberActivity(kind=kind),
        producer="source-svc",
        member_id=member_id,
        occurred_at=datetime.now(UTC),
    )


class Pipeline:
    def __init__(self, source_url: str, sink_url: str, prefix: str) -> None:
        self.prefix = prefix
        self.source: AsyncEngine = make_engine(source_url)
        self.sink: AsyncEngine = make_engine(sink_url)
        self.producer = RenewingProducer(KAFKA_BOOTSTRAP, "source-svc")
        self.relay: OutboxRelay | None = None
        self.consumer: InboxConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def prepare(self) -> None:
        await migrate(self.source, shared_migrations())
        await migrate(self.sink, shared_migrations())
        async with self.sink.begin() as conn:
            await conn.execute(
                text("CREATE TABLE visits (member_id uuid PRIMARY KEY, n int NOT NULL)")
            )
        await ensure_topics(KAFKA_BOOTSTRAP, [f"{self.prefix}dlq.{SINK}"])
        await self.producer.start()

    def new_relay(self, poll_interval: float = 1.0) -> OutboxRelay:
        """A relay of the source's outbox (one per replica of the source service)."""
        return OutboxRelay(
            service="source-svc",
            engine=self.source,
            producer=self.producer,
            topic_prefix=self.prefix,
            poll_interval=poll_interval,
        )

    async def start_relay(self, poll_interval: float = 1.0) -> None:
        self.relay = self.new_relay(poll_interval)
        self._tasks.append(asyncio.create_task(self.relay.run()))

    async def start_consumer(self, batch_size: int = 100, buffered: bool = False) -> None:
        kafka = make_consumer(
            KAFKA_BOOTSTRAP, f"{self.prefix}{SINK}", [f"{self.prefix}members"], batch_size
        )
        await kafka.start()
        self.consumer = InboxConsumer(
            service=SINK,
            sessions=make_sessions(self.sink),
            consumer=kafka,
            dlq_producer=self.producer,
            handlers={"member.activity": count_visit_buffered if buffered else count_visit},
            topic_prefix=self.prefix,
            batch_size=batch_size,
            batch_hooks=BUFFERED if buffered else None,
        )
        self._kafka_consumer = kafka
        self._tasks.append(asyncio.create_task(self.consumer.run()))

    async def publish(self, events: Sequence[Envelope]) -> None:
        """What a service does: write events in a transaction; the relay sends them."""
        async with self.source.begin() as conn:
            await add_to_outbox(conn, events)

    async def visits(self) -> dict[UUID, int]:
        async with self.sink.connect() as conn:
            rows = await conn.execute(text("SELECT member_id, n FROM visits"))
            return {row.member_id: row.n for row in rows}

    async def total_visits(self) -> int:
        return sum((await self.visits()).values())

    async def scalar(self, engine: AsyncEngine, sql: str) -> int:
        async with engine.connect() as conn:
            return int(await conn.scalar(text(sql)) or 0)

    async def close(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        if self.consumer is not None:
            self.consumer.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(task, timeout=10)
        if self.consumer is not None:
            await self._kafka_consumer.stop()
        await self.producer.stop()
        await self.source.dispose()
        await self.sink.dispose()
