"""KPI reports: raw bucket counts from the repository turned into the KPIs of kpis.py.

Definitions (docs/analytics.md §1 and §6): orders are counted with their refunds netted
(a fully refunded order is not a sale); activity looks back `active_window_days` from
each bucket's end; liability is valued at each bucket's end; NPS takes each member's
latest answer within the bucket.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from analytics_svc import kpis, repository
from analytics_svc.kpis import Bucket


def clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def clean_object(value: dict[str, Any]) -> dict[str, Any]:
    """`clean` for a JSON object (the shape of every response body)."""
    return cast(dict[str, Any], clean(value))


def bucket_report(
    bucket: Bucket, c: repository.BucketCounts, cost_per_point_minor: float
) -> dict[str, Any]:
    """Every KPI of one bucket, next to the counts it was computed from."""
    pending = min(c.pending_points, c.outstanding_points)
    available = c.outstanding_points - pending
    answers = c.promoters + c.passives + c.detractors
    return {
        "start": bucket.start.isoformat(),
        "end": bucket.end.isoformat(),
        "members_at_start": c.members_at_start,
        "members_at_end": c.members_at_end,
        "new_members": c.new_members,
        "erased_members": c.erased_members,
        "member_growth_rate": kpis.member_growth_rate(c.members_at_start, c.members_at_end),
        "active_members": c.active_members,
        "activity_rate": kpis.activity_rate(c.active_members, c.members_at_end),
        "orders": c.orders,
        "revenue_minor": c.revenue_minor,
        "gross_revenue_minor": c.gross_minor,
        "refunded_minor": c.refunded_minor,
        "member_orders": c.member_orders,
        "member_revenue_minor": c.member_revenue_minor,
        "buyers": c.buyers,
        "repeat_buyers": c.repeat_buyers,
        "repurchase_rate": kpis.repurchase_rate(c.repeat_buyers, c.buyers),
        "average_order_value": kpis.average_order_value(c.revenue_minor, c.orders),
        "purchase_frequency": kpis.purchase_frequency(c.member_orders, c.buyers),
        "member_share_of_sales": kpis.member_share_of_sales(
            c.member_revenue_minor, c.revenue_minor
        ),
        "points_earned": c.points_earned,
        "points_redeemed": c.points_redeemed,
        "redemption_rate": kpis.redemption_rate(c.points_redeemed, c.points_earned),
        "available_points": available,
        "pending_points": pending,
        "points_liability_minor": kpis.points_liability(available, pending, cost_per_point_minor),
        "nps": None if answers == 0 else 100.0 * (c.promoters - c.detractors) / answers,
        "nps_answers": answers,
        "nps_promoters": c.promoters,
        "nps_passives": c.passives,
        "nps_detractors": c.detractors,
        "tier_members": dict(sorted(c.tiers.items())),
        "tier_distribution": kpis.tier_distribution(dict(sorted(c.tiers.items()))),
    }


async def kpi_series(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    granularity: kpis.Granularity,
    *,
    active_days: int,
    cost_per_point_minor: float,
) -> list[dict[str, Any]]:
    buckets = kpis.split_buckets(start, end, granularity)
    if not buckets:
        return []
    counts = await repository.bucket_counts(
        session, [b.start for b in buckets], [b.end for b in buckets], active_days
    )
    return [bucket_report(b, c, cost_per_point_minor) for b, c in zip(buckets, counts, strict=True)]


async def kpi_summary(
    session: AsyncSession,
    at: datetime,
    window_days: int,
    *,
    active_days: int,
    cost_per_point_minor: float,
) -> dict[str, Any]:
    """The KPIs of the window [at − window_days, at) — one bucket."""
    bucket = Bucket(at - timedelta(days=window_days), at)
    (counts,) = await repository.bucket_counts(session, [bucket.start], [bucket.end], active_days)
    return {"window_days": window_days, **bucket_report(bucket, counts, cost_per_point_minor)}
