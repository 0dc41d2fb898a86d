"""Kafka clients with safe settings (aiokafka's defaults are not: see docs/decisions)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from prometheus_client import Counter

from memberflow_events.partitioner import key_partitioner

log = logging.getLogger(__name__)

PRODUCER_RENEWALS = Counter(
    "memberflow_producer_renewals_total",
    "Idempotent producers replaced after a failed delivery",
    ["client_id"],
)


class RepeatedKafkaErrors(logging.Filter):
    """Holds back repeats of aiokafka's warnings and errors, for a handler.

    aiokafka logs every failed attempt to reach a broker at ERROR, and each client tries
    again several times a second: one broker restart printed over 20,000 lines in a CI
    run. The first message of a kind (logger, text, first argument: the node or host)
    passes; its repeats within `window_seconds` are held back, and the first one after
    the window passes with the count of those held back.
    """

    def __init__(
        self, window_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._window = window_seconds
        self._clock = clock
        self._seen: dict[tuple[str, str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith("aiokafka"):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        key = (record.name, str(record.msg), str(args[0]) if args else "")
        now = self._clock()
        passed_at, held = self._seen.get(key, (None, 0))
        if passed_at is not None and now - passed_at < self._window:
            self._seen[key] = (passed_at, held + 1)
            return False
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like it held back in {self._window:.0f} s)"
        return True


def quiet_repeated_kafka_errors() -> None:
    """Put a RepeatedKafkaErrors filter on each of the root logger's handlers."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RepeatedKafkaErrors) for f in handler.filters):
            handler.addFilter(RepeatedKafkaErrors())


def make_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    """Idempotent producer: acks from all replicas, no duplicates on its own retries."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        compression_type=None,
        request_timeout_ms=30_000,
        partitioner=key_partitioner,
    )


class OutgoingRecord(NamedTuple):
    topic: str
    value: bytes
    key: bytes
    headers: Sequence[tuple[str, bytes]] = ()


class RenewingProducer:
    """An idempotent producer that is started anew once a delivery has failed.

    aiokafka numbers each batch when it sends it. A batch that fails for good (a record
    larger than the topic allows, producer state the broker lost in a crash) leaves a gap
    in that partition's numbers, and the broker then refuses every later batch of this
    producer there with OutOfOrderSequenceNumber. Java's client bumps the producer epoch;
    aiokafka does not, so a new producer (a new producer id) takes over. Callers send
    again what failed; consumers' inboxes drop any copies.
    """

    def __init__(self, bootstrap: str, client_id: str) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._current = make_producer(bootstrap, client_id)
        self._renewing = asyncio.Lock()
        self._retired: set[asyncio.Task[None]] = set()

    @property
    def client(self) -> Any:
        """The current producer's cluster client (readiness checks fetch metadata with it)."""
        return self._current.client

    async def start(self) -> None:
        await self._current.start()

    async def stop(self) -> None:
        await self._current.stop()
        await asyncio.gather(*self._retired, return_exceptions=True)

    async def deliver(self, records: Sequence[OutgoingRecord]) -> None:
        """Send records in order and wait until Kafka acknowledged them all."""
        producer = self._current
        try:
            # send() itself raises once the producer's sender has died (aiokafka then
            # fails every new record with the error that ended it).
            acknowledgements = [
                await producer.send(
                    record.topic, record.value, key=record.key, headers=record.headers
                )
                for record in records
            ]
            await asyncio.gather(*acknowledgements)
        except KafkaError:
            await self._renew(producer)
            raise

    async def _renew(self, failed: AIOKafkaProducer) -> None:
        async with self._renewing:
            if self._current is not failed:
                return  # a concurrent delivery renewed it already
            fresh = make_producer(self._bootstrap, self._client_id)
            try:
                await fresh.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await fresh.stop()
                raise
            self._current = fresh
        PRODUCER_RENEWALS.labels(self._client_id).inc()
        log.warning("producer %s renewed after a failed delivery", self._client_id)
        # The old producer's unsent batches fail on its way out; nobody waits for it.
        retiring = asyncio.create_task(failed.stop())
        self._retired.add(retiring)
        retiring.add_done_callback(self._retired.discard)


def make_consumer(
    bootstrap: str, group_id: str, topics: Iterable[str], max_records: int
) -> AIOKafkaConsumer:
    """Manual commits after the database commit; new groups read history from the start."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_records,
        fetch_max_wait_ms=100,
        session_timeout_ms=30_000,
        heartbeat_interval_ms=3_000,
        max_poll_interval_ms=300_000,
    )


@contextlib.asynccontextmanager
async def kafka_admin(
    bootstrap: str, client_id: str = "memberflow-admin"
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on the way out."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def ensure_topics(
    bootstrap: str, topics: Iterable[str], partitions: int = 3, replication_factor: int = 1
) -> None:
    """Create missing topics (the broker does not auto-create them); existing ones are kept."""
    async with kafka_admin(bootstrap) as admin:
        existing = set(await admin.list_topics())
        missing = [name for name in topics if name not in existing]
        if not missing:
            return
        new = [
            NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)
            for name in missing
        ]
        response = await admin.create_topics(new, timeout_ms=30_000)
        for name, code, *rest in response.topic_errors:
            if code not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"creating topic {name} failed: error {code} {rest}")
        log.info("created topics %s", missing)


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    """The partitions of an existing topic (empty when the topic does not exist)."""
    async with kafka_admin(bootstrap) as admin:
        described = await admin.describe_topics([topic])
    return [
        TopicPartition(topic, int(partition["partition"]))
        for entry in described
        if entry["error_code"] == 0
        for partition in sorted(entry["partitions"], key=lambda p: int(p["partition"]))
    ]
