"""KPIs computed independently from the generated events, in plain Python.

Written from the definitions in docs/analytics.md (§1 and §6) without any of the
service's code, so a test comparing the two checks the SQL against the definitions.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from memberflow_events.envelope import Envelope
from memberflow_events.payloads import (
    CampaignExposed,
    MemberFeedback,
    OrderPurchased,
    OrderRefunded,
    PointsAdjusted,
    PointsEarned,
    PointsExpired,
    PointsRedeemed,
    PointsReleased,
    PointsReversed,
    TierChanged,
)


def ratio(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


class Facts:
    """The distinct events of a history (duplicates by event_id removed), indexed."""

    def __init__(self, events: Sequence[Envelope]) -> None:
        unique: dict[UUID, Envelope] = {}
        for e in events:
            unique.setdefault(e.event_id, e)
        self.events = list(unique.values())
        self.registered: dict[UUID, datetime] = {}
        self.erased: dict[UUID, datetime] = {}
        self.orders: dict[str, Envelope] = {}
        self.refunded: dict[str, int] = defaultdict(int)
        for e in self.events:
            if e.type == "member.registered" and e.member_id:
                seen = self.registered.get(e.member_id)
                self.registered[e.member_id] = min(seen, e.occurred_at) if seen else e.occurred_at
            elif e.type == "member.erased" and e.member_id:
                seen = self.erased.get(e.member_id)
                self.erased[e.member_id] = min(seen, e.occurred_at) if seen else e.occurred_at
            elif e.type == "order.purchased":
                self.orders.setdefault(e.payload_as(OrderPurchased).order_id, e)
        refunds: dict[str, Envelope] = {}
        for e in self.events:
            if e.type == "order.refunded":
                refunds.setdefault(e.payload_as(OrderRefunded).refund_id, e)
        for e in refunds.values():
            p = e.payload_as(OrderRefunded)
            self.refunded[p.order_id] += p.amount_minor

    def member_at(self, member: UUID, t: datetime) -> bool:
        joined = self.registered.get(member)
        gone = self.erased.get(member)
        return joined is not None and joined < t and (gone is None or gone >= t)

    def members_at(self, t: datetime) -> int:
        return sum(1 for m in self.registered if self.member_at(m, t))

    def net(self, order: Envelope) -> int:
        p = order.payload_as(OrderPurchased)
        return p.total_minor - self.refunded.get(p.order_id, 0)

    def bucket(self, start: datetime, end: datetime, active_days: int = 30) -> dict[str, Any]:
        inside = [o for o in self.orders.values() if start <= o.occurred_at < end]
        sold = [o for o in inside if self.net(o) > 0]
        member_sold = [o for o in sold if o.member_id is not None]
        per_member: dict[UUID, int] = defaultdict(int)
        for o in member_sold:
            assert o.member_id is not None
            per_member[o.member_id] += 1
        revenue = sum(self.net(o) for o in sold)
        member_revenue = sum(self.net(o) for o in member_sold)

        window_start = end - timedelta(days=active_days)
        active = set()
        for e in self.events:
            if (
                e.type in ("order.purchased", "member.activity")
                and e.member_id is not None
                and window_start <= e.occurred_at < end
                and self.member_at(e.member_id, end)
            ):
                active.add(e.member_id)

        earned = redeemed = 0
        balance: dict[UUID | None, int] = defaultdict(int)
        released_before_end = {
            e.payload_as(PointsReleased).lot_id
            for e in self.events
            if e.type == "points.released" and e.occurred_at < end
        }
        pending = 0
        for e in self.events:
            if not e.type.startswith("points.") or e.type == "points.expiring":
                continue
            if start <= e.occurred_at < end:
                if e.type == "points.earned":
                    earned += e.payload_as(PointsEarned).points
                if e.type == "points.redeemed":
                    redeemed += e.payload_as(PointsRedeemed).points
            if e.occurred_at >= end:
                continue
            if e.type == "points.earned":
                p = e.payload_as(PointsEarned)
                balance[e.member_id] += p.points
                if p.available_at > end and p.lot_id not in released_before_end:
                    pending += p.points - p.debt_repaid
            elif e.type == "points.adjusted":
                balance[e.member_id] += e.payload_as(PointsAdjusted).points
            elif e.type == "points.redeemed":
                balance[e.member_id] -= e.payload_as(PointsRedeemed).points
            elif e.type == "points.expired":
                balance[e.member_id] -= e.payload_as(PointsExpired).points
            elif e.type == "points.reversed":
                balance[e.member_id] -= e.payload_as(PointsReversed).points
        outstanding = sum(max(b, 0) for b in balance.values())

        latest: dict[UUID, tuple[datetime, UUID, int]] = {}
        for e in self.events:
            if e.type == "member.feedback" and e.member_id and start <= e.occurred_at < end:
                candidate = (e.occurred_at, e.event_id, e.payload_as(MemberFeedback).nps_score)
                if e.member_id not in latest or candidate[:2] > latest[e.member_id][:2]:
                    latest[e.member_id] = candidate
        scores = [s for _, _, s in latest.values()]
        promoters = sum(1 for s in scores if s >= 9)
        detractors = sum(1 for s in scores if s <= 6)

        tier_of: dict[UUID, tuple[datetime, UUID, str]] = {}
        for e in self.events:
            if e.type == "tier.changed" and e.member_id and e.occurred_at < end:
                change = (e.occurred_at, e.event_id, e.payload_as(TierChanged).to_tier)
                if e.member_id not in tier_of or change[:2] > tier_of[e.member_id][:2]:
                    tier_of[e.member_id] = change
        tiers: dict[str, int] = defaultdict(int)
        for member, (_, _, tier) in tier_of.items():
            gone = self.erased.get(member)
            if gone is None or gone >= end:
                tiers[tier] += 1

        at_start, at_end = self.members_at(start), self.members_at(end)
        buyers = len(per_member)
        return {
            "members_at_start": at_start,
            "members_at_end": at_end,
            "new_members": sum(1 for t in self.registered.values() if start <= t < end),
            "member_growth_rate": ratio(at_end - at_start, at_start),
            "active_members": len(active),
            "activity_rate": ratio(len(active), at_end),
            "orders": len(sold),
            "revenue_minor": revenue,
            "member_orders": len(member_sold),
            "member_revenue_minor": member_revenue,
            "buyers": buyers,
            "repeat_buyers": sum(1 for n in per_member.values() if n >= 2),
            "repurchase_rate": ratio(sum(1 for n in per_member.values() if n >= 2), buyers),
            "average_order_value": ratio(revenue, len(sold)),
            "purchase_frequency": ratio(len(member_sold), buyers),
            "member_share_of_sales": ratio(member_revenue, revenue),
            "points_earned": earned,
            "points_redeemed": redeemed,
            "redemption_rate": ratio(redeemed, earned),
            "points_liability_minor": float(outstanding),  # cost per point 1
            "pending_points": min(pending, outstanding),
            "nps": None if not scores else 100.0 * (promoters - detractors) / len(scores),
            "nps_answers": len(scores),
            "tier_members": dict(sorted(tiers.items())),
        }

    def uplift(self, campaign_id: UUID, window_days: int) -> dict[str, tuple[int, int]]:
        first: dict[UUID, Envelope] = {}
        for e in sorted(self.events, key=lambda e: (e.occurred_at, e.event_id)):
            if (
                e.type == "campaign.exposed"
                and e.member_id
                and e.payload_as(CampaignExposed).campaign_id == campaign_id
            ):
                first.setdefault(e.member_id, e)
        result: dict[str, list[int]] = {}
        for member, exposure in first.items():
            group = exposure.payload_as(CampaignExposed).group
            counts = result.setdefault(group, [0, 0])
            counts[0] += 1
            window_end = exposure.occurred_at + timedelta(days=window_days)
            if any(
                o.member_id == member
                and exposure.occurred_at <= o.occurred_at < window_end
                and self.net(o) > 0
                for o in self.orders.values()
            ):
                counts[1] += 1
        return {group: (n, k) for group, (n, k) in result.items()}


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Newcombe (1998) method 10, written out from the paper."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p1 - p2
    return (
        max(-1.0, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)),
        min(1.0, d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)),
    )
