"""Inbox consumer: each event's effect and its event_id are committed in one transaction.

A batch of records is applied in one database transaction (the inbox insert tells which
events are new); Kafka offsets are committed only after that transaction committed, so a
crash anywhere redelivers records whose effects the inbox then skips. Transient failures
(database or broker unreachable) retry the same in-memory batch with backoff; any other
failure replays the batch one event at a time and sends the failing event to
`dlq.<service>` with the reason, so one poison event never blocks the partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import Counter, Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from memberflow_events.codec import InvalidEvent, decode, encode
from memberflow_events.envelope import Envelope, EventPayload, new_event
from memberflow_events.errors import is_transient
from memberflow_events.kafka import OutgoingRecord, RenewingProducer
from memberflow_events.outbox import add_to_outbox
from memberflow_events.topics import dlq_topic, physical

log = logging.getLogger(__name__)

EVENTS_CONSUMED = Counter(
    "memberflow_events_consumed_total", "Consumed events by outcome", ["service", "outcome"]
)
CONSUMER_LAG = Gauge(
    "memberflow_consumer_lag", "Records behind the partition end", ["service", "topic", "partition"]
)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class HandlerContext:
    """What a handler gets besides the event: the transaction, the clock, and emit/park."""

    session: AsyncSession
    event: Envelope
    service: str
    consumer: str
    now: datetime
    batch: dict[str, Any] = field(default_factory=dict)
    emitted: list[Envelope] = field(default_factory=list)
    released: list[Envelope] = field(default_factory=list)

    def emit(self, payload: EventPayload, member_id: UUID | None = None) -> Envelope:
        """Queue an event caused by the current one; it is written to the outbox on commit."""
        event = new_event(
            payload,
            producer=self.service,
            member_id=member_id if member_id is not None else self.event.member_id,
            occurred_at=self.now,
            correlation_id=self.event.correlation_id,
            causation_id=self.event.event_id,
        )
        self.emitted.append(event)
        return event

    async def park(self, wait_key: str, reason: str) -> None:
        """Keep the current event until `release(wait_key)`; call before writing anything."""
        await self.session.execute(
            text(
                "INSERT INTO parked_events (consumer, wait_key, event_id, value, reason)"
                " VALUES (:consumer, :wait_key, :event_id, :value, :reason)"
                " ON CONFLICT (consumer, event_id) DO NOTHING"
            ),
            {
                "consumer": self.consumer,
                "wait_key": wait_key,
                "event_id": self.event.event_id,
                "value": encode(self.event),
                "reason": reason,
            },
        )

    async def release(self, wait_key: str) -> None:
        """Apply the events parked under `wait_key` right after the current one."""
        rows = await self.session.execute(
            text(
                "DELETE FROM parked_events WHERE consumer = :consumer AND wait_key = :wait_key"
                " RETURNING id, value"
            ),
            {"consumer": self.consumer, "wait_key": wait_key},
        )
        for row in sorted(rows, key=lambda row: int(row.id)):
            self.released.append(decode(bytes(row.value)))


Handler = Callable[[HandlerContext, Envelope], Awaitable[None]]
BatchState = dict[str, Any]


@dataclass(frozen=True)
class BatchHooks:
    """Optional bulk I/O around the handlers of one batch (one transaction).

    `prepare` runs before the first handler with the batch's new events (say, lock and
    load every account they touch in one query into the state); handlers find that state
    as `ctx.batch`; `flush` runs after the last handler (write what handlers buffered).
    Events released from parking are not in `prepare`'s list: handlers load what is missing.
    """

    prepare: Callable[[AsyncSession, Sequence[Envelope], BatchState], Awaitable[None]]
    flush: Callable[[AsyncSession, BatchState], Awaitable[None]]


_RECORD_NEW = text(
    "INSERT INTO inbox (consumer, event_id) SELECT :consumer, unnest(CAST(:ids AS uuid[]))"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)


_YIELD_EVERY = 50


class StopRequested(Exception):
    """Raised inside a retry loop when the consumer is asked to stop."""


class InboxConsumer:
    """Applies a service's events exactly once per event_id; see the module docstring."""

    def __init__(
        self,
        *,
        service: str,
        sessions: async_sessionmaker[AsyncSession],
        consumer: AIOKafkaConsumer,
        dlq_producer: RenewingProducer,
        handlers: Mapping[str, Handler],
        topic_prefix: str = "",
        batch_size: int = 500,
        clock: Clock = utc_now,
        max_backoff: float = 5.0,
        batch_hooks: BatchHooks | None = None,
    ) -> None:
        self._service = service
        self._sessions = sessions
        self._consumer = consumer
        self._dlq_producer = dlq_producer
        self._handlers = dict(handlers)
        self._prefix = topic_prefix
        self._batch_size = batch_size
        self._clock = clock
        self._max_backoff = max_backoff
        self._hooks = batch_hooks
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the batch in hand, commit its offsets, then return from run()."""
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            batches = await self._consumer.getmany(timeout_ms=200, max_records=self._batch_size)
            records = [record for partition in batches.values() for record in partition]
            if not records:
                continue
            try:
                await self.process(records)
            except StopRequested:
                return  # offsets stay uncommitted; the records come again after restart
            await self._commit(batches)

    async def process(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply a batch of records: poison to the DLQ, the rest exactly once."""
        events: list[tuple[ConsumerRecord[bytes, bytes], Envelope]] = []
        for record in records:
            try:
                event = decode(record.value)
            except InvalidEvent as error:
                await self._dead_letter(record, error.reason)
                continue
            if event.type in self._handlers:
                events.append((record, event))
            else:
                EVENTS_CONSUMED.labels(self._service, "ignored").inc()
        if not events:
            return
        try:
            await self._retrying(lambda: self._apply([event for _, event in events]))
        except StopRequested:
            raise
        except Exception:
            log.warning("batch of %d failed; applying one at a time", len(events), exc_info=True)
            await self._apply_one_by_one(events)

    async def _apply_one_by_one(
        self, events: Sequence[tuple[ConsumerRecord[bytes, bytes], Envelope]]
    ) -> None:
        for record, event in events:
            try:
                await self._retrying(partial(self._apply, [event]))
            except StopRequested:
                raise
            except Exception as error:
                await self._dead_letter(record, f"{event.type} handler failed: {error!r}")

    async def _apply(self, events: Sequence[Envelope]) -> None:
        async with self._sessions() as session, session.begin():
            ids = [event.event_id for event in events]
            recorded = await session.scalars(_RECORD_NEW, {"consumer": self._service, "ids": ids})
            fresh = set(recorded.all())
            new_events = []
            for event in events:
                if event.event_id in fresh:
                    fresh.discard(event.event_id)  # a copy later in the batch is a duplicate
                    new_events.append(event)
            state: BatchState = {}
            if self._hooks is not None and new_events:
                await self._hooks.prepare(session, new_events, state)
            emitted: list[Envelope] = []
            now = self._clock()
            for index, event in enumerate(new_events, 1):
                await self._dispatch(session, event, state, now, emitted)
                if index % _YIELD_EVERY == 0:
                    # Handlers that answer from batch state never suspend: let the
                    # service's HTTP requests run between stretches of a long batch.
                    await asyncio.sleep(0)
            if self._hooks is not None and new_events:
                await self._hooks.flush(session, state)
            await add_to_outbox(session, emitted)
        EVENTS_CONSUMED.labels(self._service, "applied").inc(len(new_events))
        EVENTS_CONSUMED.labels(self._service, "duplicate").inc(len(events) - len(new_events))

    async def _dispatch(
        self,
        session: AsyncSession,
        event: Envelope,
        state: BatchState,
        now: datetime,
        emitted: list[Envelope],
    ) -> None:
        queue = deque([event])
        while queue:
            current = queue.popleft()
            context = HandlerContext(
                session=session,
                event=current,
                service=self._service,
                consumer=self._service,
                now=now,
                batch=state,
            )
            await self._handlers[current.type](context, current)
            emitted.extend(context.emitted)
            queue.extend(context.released)

    async def _retrying(self, attempt: Callable[[], Awaitable[Any]]) -> Any:
        """Run `attempt`, retrying transient failures with exponential backoff until stopped."""
        backoff = 0.1
        while True:
            try:
                return await attempt()
            except Exception as error:
                if not is_transient(error):
                    raise
                log.warning(
                    "transient failure in %s consumer, retry in %.1fs: %r",
                    self._service,
                    backoff,
                    error,
                )
            if self._stopping.is_set():
                raise StopRequested
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        log.error(
            "dead-lettering %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason
        )
        headers = [
            *[(name, value) for name, value in record.headers if not name.startswith("dlq.")],
            ("dlq.reason", reason.encode()[:4000]),
            ("dlq.service", self._service.encode()),
            ("dlq.source.topic", record.topic.encode()),
            ("dlq.source.partition", str(record.partition).encode()),
            ("dlq.source.offset", str(record.offset).encode()),
            ("dlq.at", self._clock().isoformat().encode()),
        ]
        topic = physical(dlq_topic(self._service), self._prefix)
        await self._retrying(
            lambda: self._dlq_producer.deliver(
                [OutgoingRecord(topic, record.value, record.key, headers)]
            )
        )
        EVENTS_CONSUMED.labels(self._service, "dead_lettered").inc()

    async def _commit(
        self, batches: Mapping[TopicPartition, Sequence[ConsumerRecord[Any, Any]]]
    ) -> None:
        offsets = {partition: records[-1].offset + 1 for partition, records in batches.items()}
        try:
            await self._consumer.commit(offsets)
        except Exception:
            # Rebalanced away or broker gone: the records come again and the inbox skips them.
            log.warning("offset commit failed for %s", self._service, exc_info=True)
        for partition, next_offset in offsets.items():
            end = self._consumer.highwater(partition)
            if end is not None:
                CONSUMER_LAG.labels(self._service, partition.topic, partition.partition).set(
                    max(end - next_offset, 0)
                )
