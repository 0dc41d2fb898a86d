"""Send dead letters back to the topic they came from, once the cause is fixed.

    python -m memberflow_events.redrive points-svc [--bootstrap host:port] [--prefix p] [--dry-run]

Reads `dlq.<service>` from where the previous redrive stopped (consumer group
`dlq-redrive.<service>`), republishes each record's original key, value and headers (the
`dlq.*` headers dropped) to `dlq.source.topic`, and commits. A redriven event that fails
again lands in the DLQ again; one that had been applied in the meantime is skipped by
the inbox, so redriving twice is harmless.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from memberflow_events.kafka import make_producer, partitions_of
from memberflow_events.topics import dlq_topic, physical


async def redrive(service: str, bootstrap: str, prefix: str = "", dry_run: bool = False) -> int:
    """Republish every dead letter not yet redriven; return how many."""
    topic = physical(dlq_topic(service), prefix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=physical(f"dlq-redrive.{service}", prefix),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = make_producer(bootstrap, f"dlq-redrive-{service}")
    await consumer.start()
    await producer.start()
    try:
        partitions = await partitions_of(bootstrap, topic)
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        return await _republish(consumer, producer, partitions, ends, dry_run)
    finally:
        await producer.stop()
        await consumer.stop()


async def _republish(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    partitions: list[TopicPartition],
    ends: dict[TopicPartition, int],
    dry_run: bool,
) -> int:
    count = 0
    while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
        batches = await consumer.getmany(timeout_ms=500)
        for partition, records in batches.items():
            for record in records:
                headers = dict(record.headers)
                source = headers["dlq.source.topic"].decode()
                original = [(k, v) for k, v in record.headers if not k.startswith("dlq.")]
                reason = headers["dlq.reason"].decode()
                print(f"{source} <- {partition.topic}@{record.offset}: {reason}")
                if not dry_run:
                    await producer.send_and_wait(
                        source, record.value, key=record.key, headers=original
                    )
                count += 1
            if not dry_run and records:
                await consumer.commit({partition: records[-1].offset + 1})
    return count


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("service", help="e.g. points-svc")
    parser.add_argument(
        "--bootstrap", default=os.environ.get("MF_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    )
    parser.add_argument("--prefix", default=os.environ.get("MF_TOPIC_PREFIX", ""))
    parser.add_argument(
        "--dry-run", action="store_true", help="list the dead letters, send nothing"
    )
    args = parser.parse_args(argv)
    count = asyncio.run(redrive(args.service, args.bootstrap, args.prefix, args.dry_run))
    print(
        f"{'would redrive' if args.dry_run else 'redrove'} {count} record(s) of dlq.{args.service}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
