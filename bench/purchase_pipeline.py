"""Purchase pipeline: order.purchased → points-svc → ledger + outbox → published points.earned.

Two parts, on scratch databases and topic prefixes of this run (removed at the end):

1. Throughput. N purchases (a skewed spread of members: a few buy often, most rarely;
   1–4 lines, some gift cards that earn nothing, some order-level discounts) are
   published to `<prefix>orders` *before* points-svc starts, so the consumer always has
   a backlog. Sustained events/s = purchases applied / (time of the last `points.earned`
   record on the points topic − start of the first consumer transaction, the oldest
   `inbox.applied_at`). The run is only accepted when the points topic holds exactly
   one `points.earned` per earning purchase, every order is in the ledger with the
   points the earning rules give, and `points_svc.reconcile.check_all` finds nothing.
   Baseline, same run, after the service stopped: the same rows (inbox, ledger entry,
   lot, order, outbox row with a real `points.earned` envelope, account totals) written
   with batched asyncpg inserts (`executemany`, one transaction per `BATCH` events,
   points-svc's consumer batch size) into a fresh database with the same schema. It is the
   database's cost of the writes alone: no Kafka, no decoding, no domain logic.

   The same backlog is then consumed again, on a fresh database and topics, by
   `REPLICAS` points-svc processes in one consumer group (started together, so they
   join the group together): one Python process is the bottleneck on these 2 cores, and
   replicas are how a deployment scales the consumer. Measured and checked the same way.

2. Latency at a paced 1,000 purchases/s: for a sample of the events (one in
   `SAMPLE_EVERY`), a watcher task polls GET /v1/members/{id}/balance until the member's
   `lifetime_earned` reaches what it must be once that purchase is applied (the bench
   knows every member's earned total from part 1 and adds each purchase in publish
   order; one member's events keep their order in a partition, so "reached" means
   "this purchase is visible"). Latency = publish call → response showing it. Only a
   sample is watched, and each watcher waits `POLL_INTERVAL` or a tenth of the time
   waited so far between reads (whichever is longer), so that polling stays a small load
   beside the service even when it falls behind; the polls made per second are
   reported. The watchers read with `bench.http_probe` (keep-alive connections, request
   bytes built once) rather than httpx, whose Python cost per request took CPU from the
   service on these 2 cores.

points-svc runs as a real `python -m points_svc` subprocess (uvicorn, its own
interpreter): the REST latency then includes real HTTP and a separate event loop, and
the service's CPU is not shared with the bench's publisher and pollers in one GIL —
the way it runs in production. The bench process only publishes, polls and verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import random
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from memberflow_events.codec import encode
from memberflow_events.envelope import Envelope, new_event
from memberflow_events.ids import uuid7
from memberflow_events.kafka import ensure_topics, make_producer, partitions_of
from memberflow_events.payloads import OrderLine, OrderPurchased, PointsEarned
from memberflow_events.topics import all_topics
from memberflow_platform.auth import STOREFRONT, TokenVerifier
from memberflow_platform.database import (
    load_migrations,
    make_engine,
    make_sessions,
    migrate,
    shared_migrations,
)
from points_svc.domain import PurchaseLine
from points_svc.domain_earning import points_for_purchase
from points_svc.main import MIGRATIONS
from points_svc.reconcile import check_all
from points_svc.settings import PointsSettings

from bench.harness import ROOT, BenchContext, Measurement
from bench.http_probe import HttpProbe, ProbeError

SCENARIO = "purchase_pipeline"
SERVICE = "points-svc"
# Events per baseline transaction: points-svc's consumer batch size. Earlier results used
# 500 (wrongly described as the consumer's); each results file records it as `batch`.
BATCH: int = PointsSettings.model_fields["consumer_batch_size"].default
LATENCY_RATE = 1_000  # purchases/s during the latency part
REPLICAS = 2  # processes of points-svc in the second throughput run (one per core)
SAMPLE_EVERY = 20  # one watched purchase in 20: 50 watchers started per second
POLL_INTERVAL = 0.01  # shortest wait between a watcher's balance reads (seconds)
WATCH_TIMEOUT = 30.0
CATEGORIES = ("grocery", "books", "electronics", "apparel", "home", "beauty", "gift_card")
CATEGORY_WEIGHTS = (30, 12, 10, 15, 15, 12, 6)

# Throughput measured with the code before the consumer optimisation (commit 2a51157,
# this module, full size, 30,000 purchases / 3,000 members), kept for comparison.
BEFORE_OPTIMISATION: dict[str, Any] = {}


@dataclass(frozen=True)
class Purchase:
    event: Envelope
    value: bytes
    points: int  # what the default earning rules give (multiplier 1)


@dataclass(frozen=True)
class Sizes:
    events: int
    members: int
    latency_seconds: float


def _sizes(quick: bool) -> Sizes:
    if quick:
        return Sizes(events=3_000, members=500, latency_seconds=3)
    return Sizes(events=30_000, members=3_000, latency_seconds=20)


async def run(context: BenchContext) -> list[Measurement]:
    sizes = _sizes(context.quick)
    name = context.scratch_name("purchase")
    prefix = f"{name}."
    baseline_db = f"{name}_baseline"
    rng = random.Random(7)
    members = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(sizes.members)]
    weights = [rng.paretovariate(1.2) for _ in members]
    scaled, scaled_prefix = f"{name}_replicas", f"{name}_replicas."
    await context.create_database(name)
    await context.create_database(baseline_db)
    await context.create_database(scaled)
    try:
        await ensure_topics(context.kafka_bootstrap, [prefix + t for t in all_topics()])
        purchases = _purchases(rng, members, weights, sizes.events)
        await _publish_all(context, prefix, purchases)
        async with _service(context, name, prefix) as base_url:
            throughput = await _throughput(context, name, prefix, purchases)
            latency = await _latency(context, name, prefix, base_url, rng, members, weights, sizes)
        # The same backlog again, consumed by REPLICAS processes in one consumer group.
        await ensure_topics(context.kafka_bootstrap, [scaled_prefix + t for t in all_topics()])
        await _publish_all(context, scaled_prefix, purchases)
        async with _service(context, scaled, scaled_prefix, replicas=REPLICAS):
            replicated = await _throughput(context, scaled, scaled_prefix, purchases)
        baseline = await _baseline(context, baseline_db, purchases)
    finally:
        await context.drop_databases([name, baseline_db, scaled])
        await context.delete_topics(prefix)
        await context.delete_topics(scaled_prefix)
    rate = throughput.pop("events_per_s")
    return [
        Measurement(
            scenario=SCENARIO,
            name="sustained throughput",
            value=rate,
            unit="events/s",
            target=5_000,
            baseline=baseline["events_per_s"],
            baseline_name="batched asyncpg inserts of the same rows",
            min_ratio=0.4,
            details={**throughput, "baseline": baseline, **BEFORE_OPTIMISATION},
        ),
        Measurement(
            scenario=SCENARIO,
            name=f"sustained throughput, {REPLICAS} replicas",
            value=replicated.pop("events_per_s"),
            unit="events/s",
            target=5_000,
            baseline=baseline["events_per_s"],
            baseline_name="batched asyncpg inserts of the same rows",
            min_ratio=0.4,
            details={**replicated, "replicas": REPLICAS},
        ),
        Measurement(
            scenario=SCENARIO,
            name="publish→balance p50 at 1k/s",
            value=latency["p50_ms"],
            unit="ms",
            higher_is_better=False,
            details=latency,
        ),
        Measurement(
            scenario=SCENARIO,
            name="publish→balance p99 at 1k/s",
            value=latency["p99_ms"],
            unit="ms",
            higher_is_better=False,
            target=250,
            details={"samples": latency["samples"], "timeouts": latency["timeouts"]},
        ),
    ]


# ---------- input ----------


def _purchases(
    rng: random.Random, members: Sequence[uuid.UUID], weights: Sequence[float], count: int
) -> list[Purchase]:
    rules = PointsSettings().earning_rules()
    buyers = rng.choices(members, weights=weights, k=count)
    now = datetime.now(UTC)
    result = []
    for buyer in buyers:
        lines = [
            OrderLine(
                sku=f"sku-{rng.randrange(5_000)}",
                category=rng.choices(CATEGORIES, weights=CATEGORY_WEIGHTS)[0],
                quantity=rng.choice((1, 1, 1, 2, 3)),
                unit_price_minor=rng.randrange(150, 15_000),
            )
            for _ in range(rng.choice((1, 1, 2, 2, 3, 4)))
        ]
        lines_minor = sum(line.quantity * line.unit_price_minor for line in lines)
        total = lines_minor * 95 // 100 if rng.random() < 0.1 else lines_minor
        payload = OrderPurchased(
            order_id=f"bench-{uuid.UUID(int=rng.getrandbits(128), version=4).hex}",
            member_id=buyer,
            currency="EUR",
            total_minor=total,
            lines=lines,
            channel=rng.choice(("web", "app", "store")),
            store_id=f"store-{rng.randrange(40)}",
        )
        event = new_event(payload, producer="order-system:bench", member_id=buyer, occurred_at=now)
        points = points_for_purchase(
            (PurchaseLine(li.category, li.quantity, li.unit_price_minor) for li in lines),
            rules,
            Decimal(1),
            total,
        )
        result.append(Purchase(event, encode(event), points))
    return result


async def _publish_all(context: BenchContext, prefix: str, purchases: Sequence[Purchase]) -> None:
    producer = make_producer(context.kafka_bootstrap, "bench-orders")
    await producer.start()
    try:
        sent = [
            await producer.send(f"{prefix}orders", p.value, key=p.event.key.encode())
            for p in purchases
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


# ---------- the service ----------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def _service(
    context: BenchContext, database: str, prefix: str, replicas: int = 1
) -> AsyncIterator[str]:
    """points-svc as its own process (see the module docstring), or several replicas of it
    sharing the database and the consumer group; yields the first one's base URL."""
    async with contextlib.AsyncExitStack() as stack:
        # All started before any is awaited, so that they join the consumer group together.
        started = [
            await stack.enter_async_context(_replica(context, database, prefix, index))
            for index in range(replicas)
        ]
        await asyncio.gather(*(_wait_ready(*replica) for replica in started))
        yield started[0][0]


@contextlib.asynccontextmanager
async def _replica(
    context: BenchContext, database: str, prefix: str, index: int
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process, Path]]:
    """One started points-svc process: its base URL, the process and its log."""
    port = _free_port()
    env = {
        **os.environ,
        "MF_DATABASE_URL": context.database_url(database),
        "MF_TOPIC_PREFIX": prefix,
        "MF_KAFKA_BOOTSTRAP": context.kafka_bootstrap,
        "MF_REDIS_URL": context.redis_url,
        "MF_HTTP_PORT": str(port),
        "MF_CREATE_TOPICS": "false",
        "MF_RUN_JOBS": "false",
        "MF_LOG_LEVEL": "WARNING",
    }
    log = Path(tempfile.gettempdir()) / f"{database}-{index}.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "points_svc",
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}", process, log
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 40)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.unlink(missing_ok=True)


async def _wait_ready(base_url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"points-svc exited: {_tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"points-svc not ready after 90s: {_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


# ---------- part 1: throughput ----------


async def _throughput(
    context: BenchContext, database: str, prefix: str, purchases: Sequence[Purchase]
) -> dict[str, Any]:
    connection = await asyncpg.connect(context.dsn(database))
    try:
        deadline = time.monotonic() + max(600.0, len(purchases) / 50)
        while True:
            applied = await connection.fetchval("SELECT count(*) FROM inbox")
            unsent = await connection.fetchval("SELECT count(*) FROM outbox")
            if applied >= len(purchases) and unsent == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {applied}/{len(purchases)} applied, {unsent} unsent")
            await asyncio.sleep(0.5)
        first_consumed: datetime = await connection.fetchval("SELECT min(applied_at) FROM inbox")
        ledger = await connection.fetchrow(
            "SELECT count(*) AS entries, coalesce(sum(points), 0) AS points FROM ledger_entries"
        )
        orders = await connection.fetchval("SELECT count(*) FROM orders")
    finally:
        await connection.close()
    earning = [p for p in purchases if p.points > 0]
    published, last_ms = await _points_earned(context, f"{prefix}points")
    last_published = datetime.fromtimestamp(last_ms / 1000, UTC)
    problems = []
    if published != len(earning):
        problems.append(f"{published} points.earned published, {len(earning)} expected")
    if ledger["entries"] != len(earning) or ledger["points"] != sum(p.points for p in earning):
        problems.append(f"ledger {dict(ledger)} does not match the purchases")
    if orders != len(purchases):
        problems.append(f"{orders} orders recorded, {len(purchases)} expected")
    violations = await _reconcile(context, database)
    if violations:
        problems.append(f"reconciliation: {violations} accounts with violations")
    if problems:
        raise RuntimeError("; ".join(problems))
    seconds = (last_published - first_consumed).total_seconds()
    return {
        "events_per_s": round(len(purchases) / seconds, 1),
        "events": len(purchases),
        "earning_events": len(earning),
        "members": len({p.event.member_id for p in purchases}),
        "seconds": round(seconds, 2),
        "points_earned_published": published,
        "reconciliation_violations": 0,
    }


_TYPE = "type"


async def _points_earned(context: BenchContext, topic: str) -> tuple[int, int]:
    """How many points.earned records the topic holds, and the newest one's timestamp (ms)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=context.kafka_bootstrap,
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = await partitions_of(context.kafka_bootstrap, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        count, newest = 0, 0
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batch.values():
                for record in records:
                    if (_TYPE, b"points.earned") in record.headers:
                        count += 1
                        newest = max(newest, record.timestamp)
        return count, newest
    finally:
        await consumer.stop()


async def _reconcile(context: BenchContext, database: str) -> int:
    engine = make_engine(context.database_url(database), 2)
    try:
        return len(await check_all(make_sessions(engine)))
    finally:
        await engine.dispose()


# ---------- part 2: latency ----------


async def _latency(
    context: BenchContext,
    database: str,
    prefix: str,
    base_url: str,
    rng: random.Random,
    members: Sequence[uuid.UUID],
    weights: Sequence[float],
    sizes: Sizes,
) -> dict[str, Any]:
    count = int(LATENCY_RATE * sizes.latency_seconds)
    purchases = _purchases(rng, members, weights, count)
    connection = await asyncpg.connect(context.dsn(database))
    try:
        rows = await connection.fetch("SELECT member_id, earned FROM accounts")
    finally:
        await connection.close()
    earned: dict[uuid.UUID, int] = defaultdict(int, {r["member_id"]: r["earned"] for r in rows})
    targets = []
    for purchase in purchases:
        assert purchase.event.member_id is not None
        earned[purchase.event.member_id] += purchase.points
        targets.append(earned[purchase.event.member_id])
    verifier = TokenVerifier(**_jwt_settings())
    token = verifier.issue("bench", [STOREFRONT], ttl=timedelta(hours=2))
    poll_seconds: list[float] = []
    transport_errors = [0]
    latencies: list[float] = []
    timeouts = [0]
    address = urlsplit(base_url)
    assert address.hostname is not None
    assert address.port is not None
    client = HttpProbe(
        address.hostname, address.port, {"Authorization": f"Bearer {token}"}, connections=64
    )
    try:

        async def watch(member_id: uuid.UUID, target: int, published: float) -> None:
            while time.perf_counter() - published < WATCH_TIMEOUT:
                asked = time.perf_counter()
                try:
                    status, body = await client.get_json(f"/v1/members/{member_id}/balance")
                except ProbeError:
                    # A kept-alive connection the server closed as it was reused: retry.
                    transport_errors[0] += 1
                    continue
                poll_seconds.append(time.perf_counter() - asked)
                if status == 200 and body["lifetime_earned"] >= target:
                    latencies.append(time.perf_counter() - published)
                    return
                # Resolution within 10 % of the wait so far: slow samples cannot flood
                # the service with polls and so slow it down further.
                waited = time.perf_counter() - published
                await asyncio.sleep(max(POLL_INTERVAL, waited / 10))
            timeouts[0] += 1

        producer = make_producer(context.kafka_bootstrap, "bench-orders-paced")
        await producer.start()
        watchers: list[asyncio.Task[None]] = []
        sends = []
        # This process holds both parts' purchases (about a million objects): its full
        # garbage collections took up to 650 ms, stalling the publisher and every
        # watcher, and each sample in flight counted the pause as the service's latency.
        # Frozen objects are never scanned again; what the timed part creates still is.
        gc.collect()
        gc.freeze()
        try:
            started = time.perf_counter()
            index = 0
            while index < count:
                # Send what is due, then yield until the next is due: the watchers run on
                # time and the pace holds without a timer per event.
                now = time.perf_counter()
                while index < count and started + index / LATENCY_RATE <= now:
                    purchase = purchases[index]
                    sends.append(
                        await producer.send(
                            f"{prefix}orders", purchase.value, key=purchase.event.key.encode()
                        )
                    )
                    if index % SAMPLE_EVERY == 0 and purchase.points > 0:
                        member_id = purchase.event.member_id
                        assert member_id is not None
                        watch_one = watch(member_id, targets[index], now)
                        watchers.append(asyncio.create_task(watch_one))
                    index += 1
                due = started + index / LATENCY_RATE
                await asyncio.sleep(max(due - time.perf_counter(), 0))
            publishing = time.perf_counter() - started
            await asyncio.gather(*sends)
            await asyncio.gather(*watchers)
            watching = time.perf_counter() - started
        finally:
            gc.unfreeze()
            await producer.stop()
    finally:
        await client.close()
    if not latencies:
        raise RuntimeError(f"no purchase became visible ({timeouts[0]} timeouts)")
    # A watcher that timed out counts as the slowest possible sample, never as absent.
    samples = sorted(latencies + [WATCH_TIMEOUT] * timeouts[0])
    return {
        "p50_ms": round(_percentile(samples, 50) * 1000, 1),
        "p90_ms": round(_percentile(samples, 90) * 1000, 1),
        "p99_ms": round(_percentile(samples, 99) * 1000, 1),
        "max_ms": round(samples[-1] * 1000, 1),
        "mean_ms": round(statistics.fmean(samples) * 1000, 1),
        "samples": len(samples),
        "timeouts": timeouts[0],
        "events": count,
        "publish_rate_per_s": round(count / publishing, 1),
        "balance_polls_per_s": round(len(poll_seconds) / watching, 1),
        "balance_poll_p50_ms": round(statistics.median(poll_seconds) * 1000, 1),
        "min_poll_interval_ms": POLL_INTERVAL * 1000,
        "poll_transport_errors": transport_errors[0],
    }


def _percentile(ordered: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def _jwt_settings() -> dict[str, str]:
    settings = PointsSettings()
    return {
        "secret": settings.jwt_secret.get_secret_value(),
        "issuer": settings.jwt_issuer,
        "audience": settings.jwt_audience,
    }


# ---------- baseline ----------


async def _baseline(
    context: BenchContext, database: str, purchases: Sequence[Purchase]
) -> dict[str, Any]:
    """The same rows as the pipeline writes, inserted with batched asyncpg statements."""
    engine = make_engine(context.database_url(database), 1)
    try:
        service_migrations = load_migrations(SERVICE, MIGRATIONS)
        await migrate(engine, [*shared_migrations(), *service_migrations])
    finally:
        await engine.dispose()
    batches = [_baseline_rows(purchases[i : i + BATCH]) for i in range(0, len(purchases), BATCH)]
    connection = await asyncpg.connect(context.dsn(database))
    try:
        started = time.perf_counter()
        for rows in batches:
            async with connection.transaction():
                await connection.executemany(_BASE_INBOX, rows["inbox"])
                await connection.executemany(_BASE_ACCOUNTS, rows["accounts"])
                await connection.executemany(_BASE_LOTS, rows["lots"])
                await connection.executemany(_BASE_ENTRIES, rows["entries"])
                await connection.executemany(_BASE_ORDERS, rows["orders"])
                await connection.executemany(_BASE_OUTBOX, rows["outbox"])
        seconds = time.perf_counter() - started
    finally:
        await connection.close()
    return {
        "events_per_s": round(len(purchases) / seconds, 1),
        "seconds": round(seconds, 2),
        "batch": BATCH,
    }


_BASE_INBOX = "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2)"
_BASE_ACCOUNTS = (
    "INSERT INTO accounts (member_id, earned) VALUES ($1, $2) ON CONFLICT (member_id)"
    " DO UPDATE SET earned = accounts.earned + EXCLUDED.earned, version = accounts.version + 1,"
    " updated_at = now()"
)
_BASE_LOTS = (
    "INSERT INTO lots (lot_id, member_id, source_kind, source_ref, original, remaining,"
    " available_at, expires_at, released) VALUES ($1, $2, 'order', $3, $4, $4, $5, $6, true)"
)
_BASE_ENTRIES = (
    "INSERT INTO ledger_entries (member_id, kind, points, allocation_lots, allocation_points,"
    " order_id, occurred_at) VALUES ($1, 'earn', $2, $3, $4, $5, $6)"
)
_BASE_ORDERS = (
    "INSERT INTO orders (order_id, member_id, lot_id, earned_points, total_minor, multiplier,"
    " purchased_at) VALUES ($1, $2, $3, $4, $5, 1, $6)"
)
_BASE_OUTBOX = (
    "INSERT INTO outbox (event_id, topic, record_key, event_type, event_version, value)"
    " VALUES ($1, 'points', $2, 'points.earned', 1, $3)"
)


def _baseline_rows(purchases: Sequence[Purchase]) -> dict[str, list[tuple[Any, ...]]]:
    rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    per_member: dict[uuid.UUID, int] = defaultdict(int)
    for purchase in purchases:
        event, points = purchase.event, purchase.points
        order = event.payload_as(OrderPurchased)
        member_id = event.member_id
        assert member_id is not None
        when = event.occurred_at
        rows["inbox"].append((SERVICE, event.event_id))
        per_member[member_id] += points
        lot_id = uuid7() if points > 0 else None
        rows["orders"].append((order.order_id, member_id, lot_id, points, order.total_minor, when))
        if lot_id is None:
            continue
        expires = when + timedelta(days=365)
        rows["lots"].append((lot_id, member_id, order.order_id, points, when, expires))
        rows["entries"].append((member_id, points, [lot_id], [points], order.order_id, when))
        earned = PointsEarned(
            lot_id=lot_id,
            points=points,
            source="order",
            order_id=order.order_id,
            available_at=when,
            expires_at=expires,
            balance_after=points,
        )
        outgoing = new_event(
            earned,
            producer=SERVICE,
            member_id=member_id,
            occurred_at=when,
            correlation_id=event.correlation_id,
            causation_id=event.event_id,
        )
        rows["outbox"].append((outgoing.event_id, outgoing.key, encode(outgoing)))
    rows["accounts"] = list(per_member.items())
    return rows


# ---------- scratch resources ----------
