"""Programme KPIs (DESIGN.md §4 "Analytics"). Pure functions over plain counts and sums.

Every ratio returns None when its denominator is 0 ("not defined for this bucket"), never
0 and never an exception, so a dashboard can show a gap rather than a misleading zero.
Money is integer minor units; averages come back as float minor units.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

DEFAULT_ACTIVE_WINDOW_DAYS = 30

K = TypeVar("K", bound=Hashable)


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO week, starting Monday 00:00 UTC
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class Bucket:
    """Half-open interval [start, end) in UTC."""

    start: datetime
    end: datetime


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment.astimezone(UTC)


def _period_start(moment: datetime, granularity: Granularity) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity is Granularity.DAY:
        return day
    if granularity is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next_period(start: datetime, granularity: Granularity) -> datetime:
    if granularity is Granularity.DAY:
        return start + timedelta(days=1)
    if granularity is Granularity.WEEK:
        return start + timedelta(days=7)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def split_buckets(start: datetime, end: datetime, granularity: Granularity | str) -> list[Bucket]:
    """Split [start, end) into calendar buckets in UTC.

    Buckets are aligned to UTC calendar boundaries (midnight; Monday for ISO weeks; the 1st
    for months) and the first and last are clipped to [start, end), so a range that starts
    mid-week yields a partial first week. Empty list when start >= end.
    """
    g = Granularity(granularity)
    lo, hi = _utc(start), _utc(end)
    buckets: list[Bucket] = []
    cursor = lo
    while cursor < hi:
        boundary = min(_next_period(_period_start(cursor, g), g), hi)
        buckets.append(Bucket(cursor, boundary))
        cursor = boundary
    return buckets


def active_window(end: datetime, days: int = DEFAULT_ACTIVE_WINDOW_DAYS) -> Bucket:
    """The window [end − days, end) over which a member counts as active."""
    if days <= 0:
        raise ValueError("days must be positive")
    e = _utc(end)
    return Bucket(e - timedelta(days=days), e)


def _ratio(numerator: float, denominator: float) -> float | None:
    if denominator == 0:
        return None
    return numerator / denominator


def _non_negative(**values: float) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")


def member_growth_rate(members_at_start: int, members_at_end: int) -> float | None:
    """(members at b − members at a) / members at a over [a, b)."""
    _non_negative(members_at_start=members_at_start, members_at_end=members_at_end)
    return _ratio(members_at_end - members_at_start, members_at_start)


def activity_rate(active_members: int, members_at_end: int) -> float | None:
    """Active members (≥ 1 purchase or activity event in the window) / members at the
    window's end, erased members excluded from both."""
    _non_negative(active_members=active_members, members_at_end=members_at_end)
    return _ratio(active_members, members_at_end)


def repurchase_rate(members_with_2plus: int, members_with_1plus: int) -> float | None:
    """Members with ≥ 2 purchases in the period / members with ≥ 1 purchase."""
    _non_negative(members_with_2plus=members_with_2plus, members_with_1plus=members_with_1plus)
    if members_with_2plus > members_with_1plus:
        raise ValueError("members_with_2plus cannot exceed members_with_1plus")
    return _ratio(members_with_2plus, members_with_1plus)


def repurchase_rate_from_counts(purchases_per_member: Iterable[int]) -> float | None:
    """repurchase_rate from each member's purchase count in the period (zeros allowed)."""
    once = twice = 0
    for count in purchases_per_member:
        once += count >= 1
        twice += count >= 2
    return repurchase_rate(twice, once)


def average_order_value(revenue_minor: int, orders: int) -> float | None:
    """Sum of order totals / number of orders in the period (minor units). The caller
    decides the scope (member orders only, or all orders) and passes matching sums."""
    _non_negative(orders=orders)
    return _ratio(revenue_minor, orders)


def purchase_frequency(orders: int, purchasing_members: int) -> float | None:
    """Orders per purchasing member in the period: member orders / members with ≥ 1 order."""
    _non_negative(orders=orders, purchasing_members=purchasing_members)
    return _ratio(orders, purchasing_members)


def member_share_of_sales(member_revenue_minor: int, total_revenue_minor: int) -> float | None:
    """Member revenue / all revenue, guest orders included in the denominator."""
    return _ratio(member_revenue_minor, total_revenue_minor)


def redemption_rate(points_redeemed: int, points_earned: int) -> float | None:
    """Points redeemed / points earned in the period."""
    _non_negative(points_redeemed=points_redeemed, points_earned=points_earned)
    return _ratio(points_redeemed, points_earned)


def points_liability(
    available_points: int, pending_points: int, cost_per_point_minor: float
) -> float:
    """(outstanding available + pending points) × cost per point, in minor units.

    Always defined: no points outstanding is a liability of 0.
    """
    _non_negative(cost_per_point_minor=cost_per_point_minor)
    return (available_points + pending_points) * cost_per_point_minor


def tier_distribution(members_per_tier: Mapping[str, int]) -> dict[str, float | None]:
    """Share of members in each tier (same keys). Shares are None when no member is counted."""
    _non_negative(**dict(members_per_tier))
    total = sum(members_per_tier.values())
    return {tier: _ratio(count, total) for tier, count in members_per_tier.items()}


@dataclass(frozen=True, slots=True)
class NpsResult:
    promoters: int  # answers 9–10
    passives: int  # answers 7–8
    detractors: int  # answers 0–6
    score: float | None  # % promoters − % detractors, −100..100; None with no answers


def nps(scores: Iterable[int]) -> NpsResult:
    """Net Promoter Score from one answer per member (see latest_answers)."""
    promoters = passives = detractors = 0
    for score in scores:
        if not 0 <= score <= 10:
            raise ValueError(f"NPS answers are 0..10, got {score}")
        if score >= 9:
            promoters += 1
        elif score >= 7:
            passives += 1
        else:
            detractors += 1
    total = promoters + passives + detractors
    value = None if total == 0 else 100.0 * (promoters - detractors) / total
    return NpsResult(promoters, passives, detractors, value)


def latest_answers(answers: Iterable[tuple[K, datetime, int]]) -> dict[K, int]:
    """Keep each member's latest answer: (member_id, answered_at, score) → {member: score}.

    A later answer replaces an earlier one; on an exact tie of answered_at the one seen
    last wins, so replaying events in log order gives the same result.
    """
    latest: dict[K, tuple[datetime, int]] = {}
    for member, answered_at, score in answers:
        seen = latest.get(member)
        if seen is None or _utc(answered_at) >= seen[0]:
            latest[member] = (_utc(answered_at), score)
    return {member: score for member, (_, score) in latest.items()}
