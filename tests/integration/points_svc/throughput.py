"""Consumer throughput of points-svc: purchases pre-published, consume → ledger + outbox →
published, then reconciliation. Not collected by pytest; run by hand:

    .venv/bin/python -m tests.integration.points_svc.throughput --events 30000 --members 1000

It uses the local infrastructure (MF_PG_PORT, MF_KAFKA_PORT) and drops its database.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid

import asyncpg
from memberflow_events.codec import encode
from memberflow_events.kafka import ensure_topics, make_producer
from memberflow_events.topics import all_topics
from points_svc.main import create_app
from points_svc.reconcile import check_all
from points_svc.settings import PointsSettings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.points_svc.helpers import purchase
from tests.support import (
    ADMIN_DSN,
    KAFKA_BOOTSTRAP,
    PG_PORT,
    REDIS_URL,
    eventually,
    running_service,
)


async def publish_purchases(prefix: str, events: int, members: int) -> None:
    people = [uuid.uuid4() for _ in range(members)]
    producer = make_producer(KAFKA_BOOTSTRAP, "points-throughput")
    await producer.start()
    try:
        sent = []
        for index in range(events):
            event = purchase(people[index % members], random.randint(500, 50_000))
            sent.append(
                await producer.send(f"{prefix}orders", encode(event), key=event.key.encode())
            )
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def count(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(sql)) or 0)


async def measure(events: int, members: int) -> None:
    database = f"throughput_points_{uuid.uuid4().hex[:8]}"
    prefix = f"tp{uuid.uuid4().hex[:8]}."
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        await ensure_topics(KAFKA_BOOTSTRAP, [prefix + topic for topic in all_topics()])
        await publish_purchases(prefix, events, members)
        settings = PointsSettings(
            database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{PG_PORT}/{database}",
            topic_prefix=prefix,
            kafka_bootstrap=KAFKA_BOOTSTRAP,
            redis_url=REDIS_URL,
            run_jobs=False,
        )
        app = create_app(settings)
        async with running_service(app):
            engine = app.state.runtime.engine

            async def started() -> bool:
                return await count(engine, "SELECT count(*) FROM orders") > 0

            async def done() -> bool:
                applied = await count(engine, "SELECT count(*) FROM orders")
                unsent = await count(
                    engine, "SELECT count(*) FROM outbox WHERE published_at IS NULL"
                )
                return applied >= events and unsent == 0

            await eventually(started, within=60, what="the first purchase applied")
            first = await count(engine, "SELECT count(*) FROM orders")
            began = time.perf_counter()
            await eventually(done, within=3600, what="every purchase applied and published")
            elapsed = time.perf_counter() - began
            violations = await check_all(app.state.runtime.sessions)
        print(
            f"{events - first} purchases applied and published in {elapsed:.1f}s:"
            f" {(events - first) / elapsed:.0f}/s steady state;"
            f" accounts with violations: {len(violations)}"
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--members", type=int, default=1_000)
    arguments = parser.parse_args()
    asyncio.run(measure(arguments.events, arguments.members))


if __name__ == "__main__":
    main()
