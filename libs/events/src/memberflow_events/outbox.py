"""Transactional outbox: events are rows written with the state change; a relay publishes them.

Delivery is at-least-once: a relay that dies after Kafka acknowledged a batch but before
it deleted the rows sends them again, and consumers' inboxes drop the copies. The outbox
is a queue, not a record: the topics are the record, so a published row is deleted.
A trigger NOTIFYs the relay when a transaction that wrote rows commits; it polls only
as a fallback, for notifications missed while its listening connection was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from prometheus_client import Counter, Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from memberflow_events.codec import encode
from memberflow_events.envelope import Envelope
from memberflow_events.kafka import OutgoingRecord, RenewingProducer
from memberflow_events.topics import physical

log = logging.getLogger(__name__)

OUTBOX_BACKLOG = Gauge("memberflow_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST = Gauge(
    "memberflow_outbox_oldest_unpublished_seconds",
    "Age of the oldest outbox row not yet published (0 when none)",
    ["service"],
)
OUTBOX_PUBLISHED = Counter("memberflow_outbox_published_total", "Events published", ["service"])
RELAY_LEADING = Gauge(
    "memberflow_outbox_relay_leading",
    "1 while this replica's relay leads (publishes); the sum over a service's replicas is 1",
    ["service"],
)
RELAY_LISTENING = Gauge(
    "memberflow_outbox_relay_listening",
    "1 while this replica's relay has its listening connection: without it, it can't lead",
    ["service"],
)

# One statement for any number of events; ORDINALITY keeps their order in the ids the
# relay publishes by.
_INSERT = text(
    "INSERT INTO outbox (event_id, topic, record_key, event_type, event_version, value)"
    " SELECT e.event_id, e.topic, e.record_key, e.event_type, e.event_version, e.value"
    " FROM unnest(CAST(:event_ids AS uuid[]), CAST(:topics AS text[]),"
    " CAST(:record_keys AS text[]), CAST(:event_types AS text[]),"
    " CAST(:event_versions AS integer[]), CAST(:event_values AS bytea[]))"
    " WITH ORDINALITY AS e(event_id, topic, record_key, event_type, event_version, value, n)"
    " ORDER BY e.n"
)


async def add_to_outbox(
    session: AsyncSession | AsyncConnection, events: Sequence[Envelope]
) -> None:
    """Queue events for publishing, inside the caller's transaction."""
    if not events:
        return
    await session.execute(
        _INSERT,
        {
            "event_ids": [event.event_id for event in events],
            "topics": [event.payload.topic for event in events],
            "record_keys": [event.key for event in events],
            "event_types": [event.type for event in events],
            "event_versions": [event.version for event in events],
            "event_values": [encode(event) for event in events],
        },
    )


def relay_lock_id(service: str) -> int:
    """Advisory-lock id that lets one relay pass at a time run per service database."""
    return zlib.crc32(f"outbox-relay:{service}".encode())


def leader_lock_id(service: str) -> int:
    """Advisory-lock id of the relay that leads: held by its listening connection."""
    return zlib.crc32(f"outbox-relay-leader:{service}".encode())


NOTIFY_CHANNEL = "outbox"  # raised by the trigger of migration 0002_outbox_notify.sql
_FIRST_RETRY_SECONDS = 0.05

# Ids and versions come as text, as the headers carry them.
_CLAIM = text(
    "SELECT id, topic, record_key, event_type, event_version::text, event_id::text, value"
    " FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED"
)
# A row is deleted once Kafka acknowledged it. Earlier builds marked rows published
# (`published_at`) and pruned them an hour later; while such a replica still runs during
# a rolling upgrade it may mark rows, which the claim skips and the leader deletes. The
# column and `outbox_published_at` go in a later release, once no such replica can be
# left (the index of unpublished rows already went: migration 0003).
_DELETE_PUBLISHED = text("DELETE FROM outbox WHERE id = ANY(:ids)")
_DELETE_MARKED = text("DELETE FROM outbox WHERE published_at IS NOT NULL")
_BACKLOG = text(
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM outbox"
    " WHERE published_at IS NULL"
)


def asyncpg_dsn(engine: AsyncEngine) -> str:
    """The engine's database as a DSN for plain asyncpg connections (the relay's listener,
    the runtime's read pool)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class OutboxRelay:
    """Publishes outbox rows in id order with an idempotent producer, then deletes them."""

    def __init__(
        self,
        *,
        service: str,
        engine: AsyncEngine,
        producer: RenewingProducer,
        topic_prefix: str = "",
        batch_size: int = 500,
        poll_interval: float = 1.0,
        watch_interval: float = 15.0,
        after_publish: Callable[[], Awaitable[None] | None] | None = None,
    ) -> None:
        self._service = service
        self._engine = engine
        self._producer = producer
        self._prefix = topic_prefix
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._watch_interval = watch_interval
        # Test seam: runs after Kafka acknowledged a batch, before the rows are deleted.
        self._after_publish = after_publish
        self._stopping = asyncio.Event()
        self._rows_written = asyncio.Event()
        # One relay per service database leads: its listening connection holds a
        # session lock (released by PostgreSQL when that connection dies). The others
        # only try for it once a poll interval, so one commit wakes one relay.
        self._leading = False
        RELAY_LEADING.labels(service).set(0)
        RELAY_LISTENING.labels(service).set(0)

    @property
    def leading(self) -> bool:
        return self._leading

    def _set_leading(self, leading: bool) -> None:
        self._leading = leading
        RELAY_LEADING.labels(self._service).set(int(leading))

    def stop(self) -> None:
        """Finish: one last pass publishes what is committed by now, then run() returns."""
        self._stopping.set()
        self._rows_written.set()

    async def run(self) -> None:
        """Relay until stop(); transient failures back off and retry, nothing is skipped."""
        helpers = [
            asyncio.create_task(self._listen(), name=f"outbox-listener:{self._service}"),
            asyncio.create_task(self._watch(), name=f"outbox-watch:{self._service}"),
        ]
        try:
            await self._relay()
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _relay(self) -> None:
        backoff = _FIRST_RETRY_SECONDS
        while not self._stopping.is_set():
            await self._wait_to_lead()
            self._rows_written.clear()  # a commit during the pass wakes the next one
            try:
                published = await self.publish_batch()
                backoff = _FIRST_RETRY_SECONDS
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "outbox relay of %s failed; retrying in %.1fs", self._service, backoff
                )
                await _wait(self._stopping, backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published < self._batch_size:
                await self._until_woken()
        await self._last_pass()

    async def _last_pass(self) -> None:
        """On a graceful stop, publish what was committed since the last pass (the last
        requests' and consumer batch's events), rather than leave it for the next start.
        What this cannot publish stays in the outbox for the next leader."""
        if not self.leading:
            return
        try:
            while await self.publish_batch() == self._batch_size:
                pass
        except Exception as error:
            log.warning("last outbox pass of %s failed: %r", self._service, error)

    async def _wait_to_lead(self) -> None:
        while True:
            self._rows_written.clear()  # the listener sets it once it leads
            if self.leading or self._stopping.is_set():
                return
            await self._until_woken()

    async def _until_woken(self) -> None:
        """Until a commit's NOTIFY, leadership or stop() wakes the relay, or a poll
        interval has passed."""
        await _wait(self._rows_written, self._poll_interval)

    async def _listen(self) -> None:
        """Lead when no other relay does, then wake the relay on every NOTIFY; reconnect
        when the connection is lost. Runs until run() cancels it."""
        dsn = asyncpg_dsn(self._engine)
        name = f"outbox-listener:{self._service}"
        backoff = _FIRST_RETRY_SECONDS
        while True:
            try:
                connection = await asyncpg.connect(dsn, server_settings={"application_name": name})
            except Exception as error:
                log.warning("%s cannot connect: %r", name, error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = _FIRST_RETRY_SECONDS
            RELAY_LISTENING.labels(self._service).set(1)
            try:
                await self._lead_until_lost(connection)
                log.warning("%s lost its connection; reconnecting", name)
            except Exception as error:
                log.warning("%s failed: %r; reconnecting", name, error)
            finally:
                RELAY_LISTENING.labels(self._service).set(0)
                self._set_leading(False)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), timeout=2)

    async def _lead_until_lost(self, connection: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        lock_id = leader_lock_id(self._service)
        while not await connection.fetchval("SELECT pg_try_advisory_lock($1)", lock_id):
            await _wait(lost, self._poll_interval)
            if lost.is_set():
                return
        await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
        self._set_leading(True)
        self._rows_written.set()  # rows may have been written while nobody listened
        await lost.wait()

    def _on_notify(self, *_: object) -> None:
        self._rows_written.set()

    async def publish_batch(self) -> int:
        """Publish one batch if this relay holds the service's relay lock; return its size."""
        async with self._engine.begin() as conn:
            if not await self._holds_lock(conn):
                return 0
            rows = (await conn.execute(_CLAIM, {"limit": self._batch_size})).all()
            if not rows:
                return 0
            await self._producer.deliver(self._records(rows))
            if self._after_publish is not None:
                outcome = self._after_publish()
                if outcome is not None:
                    await outcome
            await conn.execute(_DELETE_PUBLISHED, {"ids": [row.id for row in rows]})
        OUTBOX_PUBLISHED.labels(self._service).inc(len(rows))
        return len(rows)

    async def _holds_lock(self, conn: AsyncConnection) -> bool:
        lock = text("SELECT pg_try_advisory_xact_lock(:lock_id)")
        return bool(await conn.scalar(lock, {"lock_id": relay_lock_id(self._service)}))

    def _records(self, rows: Sequence[Any]) -> list[OutgoingRecord]:
        producer = ("producer", self._service.encode())
        topics: dict[str, str] = {}
        records = []
        for _, topic, key, event_type, version, event_id, value in rows:
            physical_topic = topics.get(topic)
            if physical_topic is None:
                physical_topic = topics[topic] = physical(topic, self._prefix)
            headers = [
                ("type", event_type.encode()),
                ("version", version.encode()),
                ("event_id", event_id.encode()),
                producer,
            ]
            records.append(OutgoingRecord(physical_topic, value, key.encode(), headers))
        return records

    async def _watch(self) -> None:
        """Every replica reports the backlog, so it is seen even when no relay leads."""
        while True:
            try:
                await self.housekeeping()
            except Exception as error:
                log.warning("outbox watch of %s failed: %r", self._service, error)
            await asyncio.sleep(self._watch_interval)

    async def housekeeping(self) -> None:
        """Report the backlog and its age; when leading, delete rows an earlier build
        marked published."""
        async with self._engine.begin() as conn:
            if self.leading:
                await conn.execute(_DELETE_MARKED)
            backlog, oldest = (await conn.execute(_BACKLOG)).one()
        OUTBOX_BACKLOG.labels(self._service).set(backlog)
        OUTBOX_OLDEST.labels(self._service).set(float(oldest))


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until the event is set or `seconds` have passed, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
