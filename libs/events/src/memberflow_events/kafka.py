"""Kafka clients with safe settings (aiokafka's defaults are not: see docs/decisions)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)


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
    )


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


async def ensure_topics(
    bootstrap: str, topics: Iterable[str], partitions: int = 3, replication_factor: int = 1
) -> None:
    """Create missing topics (the broker does not auto-create them); existing ones are kept."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="memberflow-admin")
    await admin.start()
    try:
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
    finally:
        await admin.close()


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    """The partitions of an existing topic (empty when the topic does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="memberflow-admin")
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [
        TopicPartition(topic, int(partition["partition"]))
        for entry in described
        if entry["error_code"] == 0
        for partition in sorted(entry["partitions"], key=lambda p: int(p["partition"]))
    ]
