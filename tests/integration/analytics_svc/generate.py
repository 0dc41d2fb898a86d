"""Deterministic event histories for analytics-svc tests, and publishing them to Kafka.

Everything carries historical `occurred_at` times (the business time the service uses).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from memberflow_events.codec import encode, headers_of
from memberflow_events.envelope import Envelope, EventPayload, new_event
from memberflow_events.kafka import make_producer
from memberflow_events.payloads import (
    CampaignExposed,
    MemberActivity,
    MemberErased,
    MemberFeedback,
    MemberRegistered,
    OrderLine,
    OrderPurchased,
    OrderRefunded,
    PointsAdjusted,
    PointsEarned,
    PointsExpired,
    PointsRedeemed,
    PointsReleased,
    TierChanged,
)
from memberflow_events.topics import physical

from tests.support import KAFKA_BOOTSTRAP

T0 = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday
PRODUCER = "order-system:test"


def event(
    payload: EventPayload, member_id: uuid.UUID | None, at: datetime, producer: str = PRODUCER
) -> Envelope:
    return new_event(payload, producer=producer, member_id=member_id, occurred_at=at)


def purchase(
    member_id: uuid.UUID | None, at: datetime, total: int, order_id: str | None = None
) -> Envelope:
    return event(
        OrderPurchased(
            order_id=order_id or f"o-{uuid.uuid4().hex[:12]}",
            member_id=member_id,
            currency="EUR",
            total_minor=total,
            lines=[OrderLine(sku="sku-1", category="food", quantity=1, unit_price_minor=total)],
            channel="web",
        ),
        member_id,
        at,
    )


def refund(order: Envelope, at: datetime, amount: int) -> Envelope:
    p = order.payload_as(OrderPurchased)
    return event(
        OrderRefunded(
            order_id=p.order_id, refund_id=f"r-{uuid.uuid4().hex[:12]}", amount_minor=amount
        ),
        order.member_id,
        at,
    )


@dataclass
class History:
    events: list[Envelope] = field(default_factory=list)
    members: list[uuid.UUID] = field(default_factory=list)
    campaign_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def of_type(self, event_type: str) -> list[Envelope]:
        return [e for e in self.events if e.type == event_type]


def generate(seed: int = 7, members: int = 60, days: int = 120) -> History:
    """Members registering over `days`, buying, refunding, earning and spending points,
    changing tier, answering NPS, and a campaign with treatment and control groups."""
    rng = random.Random(seed)
    h = History()

    def at(lo: datetime, hi: datetime) -> datetime:
        span = (hi - lo).total_seconds()
        moment = lo + timedelta(seconds=rng.randrange(max(int(span), 1)))
        return moment.replace(microsecond=0)

    end = T0 + timedelta(days=days)
    for _ in range(members):
        member = uuid.uuid4()
        h.members.append(member)
        joined = at(T0 - timedelta(days=20), end - timedelta(days=10))
        h.events.append(
            event(MemberRegistered(), member, joined, "member-svc"),
        )
        h.events.append(
            event(
                TierChanged(
                    from_tier=None,
                    to_tier="basic",
                    direction="initial",
                    reason="registered",
                    qualifying_value=0,
                ),
                member,
                joined,
                "tier-svc",
            )
        )
        for _ in range(rng.randrange(0, 7)):
            moment = at(joined, end)
            total = rng.randrange(500, 20000)
            order = purchase(member, moment, total)
            h.events.append(order)
            earned = total // 100
            if earned > 0:
                lot = uuid.uuid4()
                pending = rng.random() < 0.3
                available = moment + timedelta(days=14 if pending else 0)
                h.events.append(
                    event(
                        PointsEarned(
                            lot_id=lot,
                            points=earned,
                            source="order",
                            order_id=order.payload_as(OrderPurchased).order_id,
                            available_at=available,
                            expires_at=available + timedelta(days=365),
                        ),
                        member,
                        moment,
                        "points-svc",
                    )
                )
                if pending and available < end:
                    h.events.append(
                        event(
                            PointsReleased(lot_id=lot, points=earned),
                            member,
                            available,
                            "points-svc",
                        )
                    )
                if rng.random() < 0.3:
                    h.events.append(
                        event(
                            PointsRedeemed(redemption_id=uuid.uuid4(), points=max(1, earned // 2)),
                            member,
                            moment + timedelta(days=rng.randrange(1, 20)),
                            "points-svc",
                        )
                    )
                if rng.random() < 0.1:
                    h.events.append(
                        event(
                            PointsExpired(lot_id=lot, points=max(1, earned // 3)),
                            member,
                            moment + timedelta(days=rng.randrange(5, 30)),
                            "points-svc",
                        )
                    )
            if rng.random() < 0.15:
                amount = total if rng.random() < 0.4 else rng.randrange(1, total)
                h.events.append(
                    refund(order, moment + timedelta(days=rng.randrange(0, 10)), amount)
                )
        for _ in range(rng.randrange(0, 5)):
            h.events.append(
                event(
                    MemberActivity(kind=rng.choice(["login", "visit", "review"])),
                    member,
                    at(joined, end),
                    "member-svc",
                )
            )
        for _ in range(rng.randrange(0, 3)):
            h.events.append(
                event(
                    MemberFeedback(nps_score=rng.randrange(0, 11)),
                    member,
                    at(joined, end),
                    "member-svc",
                )
            )
        if rng.random() < 0.3:
            h.events.append(
                event(
                    TierChanged(
                        from_tier="basic",
                        to_tier=rng.choice(["silver", "gold"]),
                        direction="upgrade",
                        reason="spend",
                        qualifying_value=100000,
                    ),
                    member,
                    at(joined, end),
                    "tier-svc",
                )
            )
        if rng.random() < 0.1:
            h.events.append(
                event(
                    PointsAdjusted(points=rng.choice([-5, 25]), actor="ops", reason="goodwill"),
                    member,
                    at(joined, end),
                    "points-svc",
                )
            )
    # Guests buy too: they count in all revenue, never in member revenue.
    for _ in range(12):
        h.events.append(purchase(None, at(T0, end), rng.randrange(500, 9000)))
    # A few members are erased.
    for member in rng.sample(h.members, min(4, len(h.members) // 10)):
        h.events.append(
            event(MemberErased(), member, at(T0 + timedelta(days=30), end), "member-svc")
        )
    # A campaign: 2/3 treatment, 1/3 control, exposed on day 60; treatment buys a bit more.
    exposed_at = T0 + timedelta(days=60)
    for i, member in enumerate(rng.sample(h.members, min(45, len(h.members)))):
        group = "control" if i % 3 == 0 else "treatment"
        h.events.append(
            event(
                CampaignExposed(campaign_id=h.campaign_id, group=group, trigger="blast"),
                member,
                exposed_at + timedelta(minutes=i),
                "campaign-svc",
            )
        )
        if rng.random() < (0.5 if group == "treatment" else 0.25):
            h.events.append(
                purchase(
                    member,
                    exposed_at + timedelta(days=rng.randrange(0, 20), hours=3),
                    rng.randrange(1000, 5000),
                )
            )
    h.events.sort(key=lambda e: e.occurred_at)
    return h


async def publish(events: Sequence[Envelope], prefix: str) -> None:
    producer = make_producer(KAFKA_BOOTSTRAP, "analytics-test")
    await producer.start()
    try:
        sends = [
            await producer.send(
                physical(e.payload.topic, prefix),
                value=encode(e),
                key=e.key.encode(),
                headers=headers_of(e),
            )
            for e in events
        ]
        for sent in sends:
            await sent
    finally:
        await producer.stop()
