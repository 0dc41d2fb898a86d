from datetime import UTC, datetime, timedelta

from tier_svc.domain import (
    Contribution,
    Ladder,
    QualifyingMetric,
    TierState,
    default_ladder,
    describe_progress,
    format_amount,
    progress,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LADDER = default_ladder()


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


def two_tier_ladder(metric: str, regular_threshold: int) -> Ladder:
    return Ladder.model_validate(
        {
            "metric": metric,
            "tiers": [
                {"code": "basic", "name": "Basic", "rank": 0, "threshold": 0},
                {"code": "regular", "name": "Regular", "rank": 1, "threshold": regular_threshold},
            ],
        }
    )


def test_progress_to_gold_with_deadline_from_the_oldest_purchase() -> None:
    s = TierState(tier_code="silver", reached_at=days_ago(100))
    items = [Contribution(days_ago(324), 300_000), Contribution(days_ago(50), 177_000)]
    p = progress(s, items, LADDER, NOW)
    assert p.current_tier == "silver"
    assert p.qualifying_value == 477_000
    assert p.next_tier == "gold"
    assert p.amount_needed == 23_000
    assert p.needed_by == days_ago(324) + timedelta(days=365)
    assert p.within_days == 41
    assert p.protected_until == days_ago(100) + timedelta(days=365)
    assert p.downgrade_to is None
    assert p.amount_to_keep == 0
    assert describe_progress(p, LADDER) == "spend 230.00 more within 41 days to reach gold"


def test_within_days_rounds_down() -> None:
    s = TierState(tier_code="basic", reached_at=days_ago(1))
    p = progress(s, [Contribution(days_ago(364.5), 100)], LADDER, NOW)
    assert p.within_days == 0
    assert describe_progress(p, LADDER) == "spend 999.00 more within 0 days to reach silver"


def test_one_day_is_singular() -> None:
    s = TierState(tier_code="basic", reached_at=days_ago(1))
    p = progress(s, [Contribution(days_ago(364), 100)], LADDER, NOW)
    assert describe_progress(p, LADDER) == "spend 999.00 more within 1 day to reach silver"


def test_no_deadline_when_nothing_will_leave_the_window() -> None:
    s = TierState(tier_code="basic", reached_at=days_ago(1))
    p = progress(s, [], LADDER, NOW)
    assert (p.amount_needed, p.needed_by, p.within_days) == (100_000, None, None)
    assert describe_progress(p, LADDER) == "spend 1,000.00 more to reach silver"


def test_top_tier_has_no_next() -> None:
    s = TierState(tier_code="diamond", reached_at=days_ago(1))
    p = progress(s, [Contribution(days_ago(1), 2_500_000)], LADDER, NOW)
    assert (p.next_tier, p.amount_needed, p.within_days) == (None, None, None)
    assert describe_progress(p, LADDER) == "diamond is the highest tier"


def test_progress_shows_what_a_downgrade_would_be_today() -> None:
    s = TierState(tier_code="gold", reached_at=days_ago(200))
    p = progress(s, [Contribution(days_ago(10), 150_000)], LADDER, NOW)
    assert p.downgrade_to == "silver"
    assert p.amount_to_keep == 350_000
    assert p.protected_until == days_ago(200) + timedelta(days=365)


def test_progress_counts_refunds() -> None:
    s = TierState(tier_code="basic", reached_at=days_ago(30))
    items = [Contribution(days_ago(10), 90_000), Contribution(days_ago(10), -20_000)]
    p = progress(s, items, LADDER, NOW)
    assert p.qualifying_value == 70_000
    assert p.amount_needed == 30_000


def test_progress_text_for_other_metrics() -> None:
    orders = two_tier_ladder("orders", 12)
    s = TierState(tier_code="basic", reached_at=days_ago(30))
    p = progress(s, [Contribution(days_ago(5), 1)] * 10, orders, NOW)
    assert describe_progress(p, orders) == "place 2 more orders within 360 days to reach regular"
    points = two_tier_ladder("points", 12)
    p = progress(s, [], points, NOW)
    assert describe_progress(p, points) == "earn 12 more points to reach regular"


def test_format_amount() -> None:
    assert format_amount(123_456_789, QualifyingMetric.SPEND, 2) == "1,234,567.89"
    assert format_amount(5, QualifyingMetric.SPEND, 2) == "0.05"
    assert format_amount(1500, QualifyingMetric.SPEND, 0) == "1,500"
    assert format_amount(1500, QualifyingMetric.POINTS, 2) == "1,500"


def test_singular_order() -> None:
    orders = two_tier_ladder("orders", 2)
    s = TierState(tier_code="basic", reached_at=days_ago(30))
    p = progress(s, [Contribution(days_ago(5), 1)], orders, NOW)
    assert describe_progress(p, orders) == "place 1 more order within 360 days to reach regular"
