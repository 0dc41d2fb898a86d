"""Run one relay pass that is killed with SIGKILL after Kafka acknowledged the batch and
before it deleted the outbox rows. Usage: relay_then_die.py <db-url> <prefix>"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from memberflow_events.kafka import RenewingProducer
from memberflow_events.outbox import OutboxRelay
from memberflow_platform.database import make_engine

from tests.support import KAFKA_BOOTSTRAP


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def main(database_url: str, prefix: str) -> None:
    producer = RenewingProducer(KAFKA_BOOTSTRAP, "doomed-relay")
    await producer.start()
    relay = OutboxRelay(
        service="source-svc",
        engine=make_engine(database_url),
        producer=producer,
        topic_prefix=prefix,
        after_publish=die,
    )
    await relay.publish_batch()
    raise SystemExit("the relay should have been killed after publishing")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
