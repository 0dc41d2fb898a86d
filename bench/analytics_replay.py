"""Analytics replay: rebuild every analytics-svc projection from the topics' history.

The topics (a scratch prefix, 3 partitions each as the services create them) are filled
with `EVENTS` events (quick: 20,000) of a realistic programme history over two years,
built with the `libs/events` payload models and encoded as the services encode them:
per member a registration, purchases with their `points.earned`, some refunds with their
`points.reversed`, redemptions, expiries, activities, NPS answers, tier changes, campaign
coupons and exposures and RFM segment changes (types no projection reads are part of the
history too: the replay must skip them), some erasures, plus guest orders.

Measured: `analytics_svc.rebuild.rebuild_with_settings` over a fresh scratch database
(what `make analytics-rebuild` runs: truncate, read every partition to its end offset,
write the fact tables), events/s = records replayed / its own wall time. The result is
checked: every fact table holds exactly the rows the history implies.

Baseline (reported; the target is absolute, ≥ 50,000 events/s): consuming the same
partitions to their end with aiokafka, same consumer settings as the rebuild, doing
nothing with the records — the ceiling a Python replay over aiokafka can reach here.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from analytics_svc.rebuild import CONSUMED_TOPICS, rebuild_with_settings
from analytics_svc.settings import AnalyticsSettings
from memberflow_events.codec import encode
from memberflow_events.envelope import EventPayload, new_event
from memberflow_events.kafka import ensure_topics, make_producer, partitions_of
from memberflow_events.payloads import (
    CampaignExposed,
    CouponIssued,
    MemberActivity,
    MemberErased,
    MemberFeedback,
    MemberRegistered,
    MemberSegmentChanged,
    OrderLine,
    OrderPurchased,
    OrderRefunded,
    PointsEarned,
    PointsExpired,
    PointsRedeemed,
    PointsReversed,
    TierChanged,
)
from memberflow_events.topics import all_topics

from bench.harness import BenchContext, Measurement

SCENARIO = "analytics_replay"
TARGET = 50_000.0
HISTORY_DAYS = 730
CATEGORIES = ("grocery", "books", "electronics", "apparel", "home", "beauty")
SEGMENTS = ("Champions", "Loyal", "Potential loyalist", "New", "At risk", "Hibernating", "Lost")
# Fact rows each projected type writes (one per event); other types write nothing.
PROJECTED = {
    "order.purchased": "fact_purchases",
    "order.refunded": "fact_refunds",
    "member.registered": "fact_registrations",
    "member.erased": "fact_erasures",
    "member.activity": "fact_activities",
    "member.feedback": "fact_feedback",
    "points.earned": "fact_points",
    "points.redeemed": "fact_points",
    "points.reversed": "fact_points",
    "points.expired": "fact_points",
    "tier.changed": "fact_tier_changes",
    "campaign.exposed": "fact_exposures",
}

# Measured with the code before this scenario's changes (commit 0b753e7), full size.
BEFORE_OPTIMISATION: dict[str, Any] = {}


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes
    type: str


async def run(context: BenchContext) -> list[Measurement]:
    count = 20_000 if context.quick else 500_000
    name = context.scratch_name("replay")
    prefix = f"{name}."
    records = _history(random.Random(5), count, datetime.now(UTC))
    await context.create_database(name)
    try:
        await ensure_topics(context.kafka_bootstrap, [prefix + t for t in all_topics()])
        produced = await _publish(context, prefix, records)
        baseline = await _consume_only(context, prefix)
        settings = AnalyticsSettings(
            database_url=context.database_url(name),
            kafka_bootstrap=context.kafka_bootstrap,
            redis_url=context.redis_url,
            topic_prefix=prefix,
        )
        result = await rebuild_with_settings(settings)
        await _verify(context, name, records)
    finally:
        await context.drop_databases([name])
        await context.delete_topics(prefix)
    if result.records != len(records):
        raise RuntimeError(f"replayed {result.records} records, {len(records)} published")
    types = Counter(r.type for r in records)
    return [
        Measurement(
            scenario=SCENARIO,
            name="rebuild of all projections",
            value=round(result.events_per_second, 1),
            unit="events/s",
            target=TARGET,
            baseline=baseline["events_per_s"],
            baseline_name="aiokafka consume-only of the same partitions",
            details={
                "records": result.records,
                "applied": result.applied,
                "ignored": result.ignored,
                "invalid": result.invalid,
                "seconds": round(result.seconds, 2),
                "publish": produced,
                "baseline": baseline,
                "types": dict(sorted(types.items())),
                **BEFORE_OPTIMISATION,
            },
        )
    ]


# ---------- the history ----------


def _history(rng: random.Random, count: int, now: datetime) -> list[Record]:
    records: list[Record] = []
    start = now - timedelta(days=HISTORY_DAYS)
    while len(records) < count:
        records += _member_history(rng, start, now)
        if rng.random() < 0.1:
            records.append(_guest_order(rng, start, now))
    return records[:count]


def _record(payload: EventPayload, member_id: uuid.UUID | None, at: datetime) -> Record:
    event = new_event(payload, producer=_producer(payload), member_id=member_id, occurred_at=at)
    return Record(payload.topic, event.key.encode(), encode(event), event.type)


def _producer(payload: EventPayload) -> str:
    return {
        "orders": "order-system:bench",
        "members": "member-svc",
        "points": "points-svc",
        "tiers": "tier-svc",
        "campaigns": "campaign-svc",
        "analytics": "analytics-svc",
    }[payload.topic]


def _purchase(
    rng: random.Random, member_id: uuid.UUID | None, at: datetime
) -> tuple[OrderPurchased, Record]:
    lines = [
        OrderLine(
            sku=f"sku-{rng.randrange(5_000)}",
            category=rng.choice(CATEGORIES),
            quantity=rng.choice((1, 1, 2, 3)),
            unit_price_minor=rng.randrange(150, 15_000),
        )
        for _ in range(rng.choice((1, 1, 2, 3)))
    ]
    order = OrderPurchased(
        order_id=f"bench-{uuid.UUID(int=rng.getrandbits(128), version=4).hex}",
        member_id=member_id,
        currency="EUR",
        total_minor=sum(line.quantity * line.unit_price_minor for line in lines),
        lines=lines,
        channel=rng.choice(("web", "app", "store")),
        store_id=f"store-{rng.randrange(40)}",
    )
    return order, _record(order, member_id, at)


def _guest_order(rng: random.Random, start: datetime, now: datetime) -> Record:
    return _purchase(rng, None, start + (now - start) * rng.random())[1]


def _member_history(rng: random.Random, start: datetime, now: datetime) -> list[Record]:
    member = uuid.UUID(int=rng.getrandbits(128), version=4)
    joined = start + (now - start) * rng.random() * 0.9
    span = now - joined
    records = [
        _record(
            MemberRegistered(
                time_zone="Europe/Berlin",
                consents={"email": rng.random() < 0.7},
                attributes={"source": rng.choice(("web", "app", "store"))},
            ),
            member,
            joined,
        )
    ]

    def when() -> datetime:
        return joined + span * rng.random()

    balance = 0
    for _ in range(int(rng.expovariate(1 / 6)) + 1):
        at = when()
        order, record = _purchase(rng, member, at)
        records.append(record)
        points = order.total_minor // 100
        if points > 0:
            balance += points
            records.append(
                _record(
                    PointsEarned(
                        lot_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                        points=points,
                        source="order",
                        order_id=order.order_id,
                        available_at=at,
                        expires_at=at + timedelta(days=365),
                        balance_after=balance,
                    ),
                    member,
                    at,
                )
            )
        if rng.random() < 0.05:
            refunded = max(1, order.total_minor // 2)
            refund_at = min(at + timedelta(days=rng.randrange(1, 20)), now)
            refund_id = f"refund-{uuid.UUID(int=rng.getrandbits(128), version=4).hex}"
            records.append(
                _record(
                    OrderRefunded(
                        order_id=order.order_id, refund_id=refund_id, amount_minor=refunded
                    ),
                    member,
                    refund_at,
                )
            )
            if points // 2 > 0:
                balance -= points // 2
                records.append(
                    _record(
                        PointsReversed(
                            order_id=order.order_id,
                            refund_id=refund_id,
                            points=points // 2,
                            balance_after=balance,
                        ),
                        member,
                        refund_at,
                    )
                )
    if balance > 500 and rng.random() < 0.4:
        spent = rng.randrange(100, balance)
        balance -= spent
        records.append(
            _record(
                PointsRedeemed(redemption_id=uuid.uuid4(), points=spent, balance_after=balance),
                member,
                when(),
            )
        )
    if balance > 50 and rng.random() < 0.1:
        records.append(
            _record(
                PointsExpired(lot_id=uuid.uuid4(), points=balance // 3, balance_after=balance),
                member,
                when(),
            )
        )
    for _ in range(int(rng.expovariate(1 / 4))):
        kind = rng.choice(("login", "visit", "review", "share"))
        records.append(_record(MemberActivity(kind=kind, channel="app"), member, when()))
    if rng.random() < 0.3:
        records.append(_record(MemberFeedback(nps_score=rng.randrange(11)), member, when()))
    if rng.random() < 0.3:
        records.append(
            _record(
                TierChanged(
                    from_tier="basic",
                    to_tier="silver",
                    direction="upgrade",
                    reason="qualifying spend reached the threshold",
                    qualifying_value=100_000,
                    multiplier="1.25",
                ),
                member,
                when(),
            )
        )
    records += _campaign_history(rng, member, when(), now)
    if rng.random() < 0.005:
        records.append(_record(MemberErased(), member, now))
    return records


def _campaign_history(
    rng: random.Random, member: uuid.UUID, at: datetime, now: datetime
) -> list[Record]:
    records = []
    campaign = uuid.UUID(int=rng.randrange(20), version=4)
    group = "control" if rng.random() < 0.1 else "treatment"
    records.append(
        _record(
            CampaignExposed(campaign_id=campaign, group=group, trigger="member.registered"),
            member,
            at,
        )
    )
    if group == "treatment" and rng.random() < 0.5:
        records.append(
            _record(
                CouponIssued(
                    coupon_id=uuid.uuid4(),
                    campaign_id=campaign,
                    code=uuid.uuid4().hex[:12].upper(),
                    kind="percent",
                    value=10,
                    valid_from=at,
                    valid_until=at + timedelta(days=30),
                ),
                member,
                at,
            )
        )
    if rng.random() < 0.5:
        records.append(
            _record(
                MemberSegmentChanged(
                    rfm_segment=rng.choice(SEGMENTS),
                    previous_segment=None,
                    recency_score=rng.randrange(1, 6),
                    frequency_score=rng.randrange(1, 6),
                    monetary_score=rng.randrange(1, 6),
                    scored_at=now,
                ),
                member,
                now,
            )
        )
    return records


async def _publish(
    context: BenchContext, prefix: str, records: Sequence[Record]
) -> dict[str, float]:
    producer = make_producer(context.kafka_bootstrap, "bench-replay")
    await producer.start()
    started = time.perf_counter()
    try:
        sent = [await producer.send(f"{prefix}{r.topic}", r.value, key=r.key) for r in records]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "events_per_s": round(len(records) / seconds, 1)}


# ---------- baseline ----------


async def _consume_only(context: BenchContext, prefix: str) -> dict[str, Any]:
    """Read every partition to its end offset and do nothing with the records."""
    partitions: list[TopicPartition] = []
    for topic in CONSUMED_TOPICS:
        partitions += await partitions_of(context.kafka_bootstrap, prefix + topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=context.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        started = time.perf_counter()
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        remaining = [tp for tp in partitions if starts[tp] < ends[tp]]
        records = 0
        while remaining:
            fetched = await consumer.getmany(*remaining, timeout_ms=200, max_records=20_000)
            for tp, batch in fetched.items():
                records += sum(1 for record in batch if record.offset < ends[tp])
            remaining = [tp for tp in remaining if await consumer.position(tp) < ends[tp]]
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
    return {
        "events_per_s": round(records / seconds, 1),
        "records": records,
        "seconds": round(seconds, 2),
    }


# ---------- verification ----------


async def _verify(context: BenchContext, database: str, records: Sequence[Record]) -> None:
    expected: Counter[str] = Counter()
    for record in records:
        table = PROJECTED.get(record.type)
        if table is not None:
            expected[table] += 1
    connection = await asyncpg.connect(context.dsn(database))
    try:
        found = {
            table: await connection.fetchval(f"SELECT count(*) FROM {table}") for table in expected
        }
    finally:
        await connection.close()
    wrong = {t: (found[t], n) for t, n in expected.items() if found[t] != n}
    if wrong:
        raise RuntimeError(f"rebuilt fact tables differ (found, expected): {wrong}")


# ---------- scratch resources ----------
