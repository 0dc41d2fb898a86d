"""KPI formulas against hand-computed values, zero denominators and bucket splitting."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from analytics_svc import kpis
from analytics_svc.kpis import Bucket, Granularity
from hypothesis import given, settings
from hypothesis import strategies as st


def _utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --------------------------------------------------------------------------- buckets


def test_day_buckets_clip_first_and_last() -> None:
    got = kpis.split_buckets(_utc(2026, 3, 1, 12), _utc(2026, 3, 3, 6), Granularity.DAY)
    assert got == [
        Bucket(_utc(2026, 3, 1, 12), _utc(2026, 3, 2)),
        Bucket(_utc(2026, 3, 2), _utc(2026, 3, 3)),
        Bucket(_utc(2026, 3, 3), _utc(2026, 3, 3, 6)),
    ]


def test_week_buckets_start_on_iso_monday() -> None:
    # 2026-01-01 is a Thursday; Mondays are Jan 5 and Jan 12.
    got = kpis.split_buckets(_utc(2026, 1, 1), _utc(2026, 1, 15), "week")
    assert got == [
        Bucket(_utc(2026, 1, 1), _utc(2026, 1, 5)),
        Bucket(_utc(2026, 1, 5), _utc(2026, 1, 12)),
        Bucket(_utc(2026, 1, 12), _utc(2026, 1, 15)),
    ]


def test_month_buckets_cross_year_end_and_leap_february() -> None:
    got = kpis.split_buckets(_utc(2027, 12, 15), _utc(2028, 3, 1), Granularity.MONTH)
    assert got == [
        Bucket(_utc(2027, 12, 15), _utc(2028, 1, 1)),
        Bucket(_utc(2028, 1, 1), _utc(2028, 2, 1)),
        Bucket(_utc(2028, 2, 1), _utc(2028, 3, 1)),
    ]


def test_buckets_are_in_utc_whatever_the_input_offset() -> None:
    cet = timezone(timedelta(hours=1))
    got = kpis.split_buckets(datetime(2026, 3, 2, 0, 30, tzinfo=cet), _utc(2026, 3, 2, 12), "day")
    assert got == [
        Bucket(_utc(2026, 3, 1, 23, 30), _utc(2026, 3, 2)),
        Bucket(_utc(2026, 3, 2), _utc(2026, 3, 2, 12)),
    ]
    assert all(b.start.tzinfo is UTC for b in got)


def test_empty_range_and_naive_datetimes() -> None:
    assert kpis.split_buckets(_utc(2026, 1, 2), _utc(2026, 1, 2), "day") == []
    assert kpis.split_buckets(_utc(2026, 1, 3), _utc(2026, 1, 2), "day") == []
    with pytest.raises(ValueError, match="timezone-aware"):
        kpis.split_buckets(datetime(2026, 1, 1), _utc(2026, 1, 2), "day")
    with pytest.raises(ValueError, match="year"):
        kpis.split_buckets(_utc(2026, 1, 1), _utc(2026, 1, 2), "year")


_moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=200, deadline=None)
@given(
    a=_moments,
    length=st.timedeltas(timedelta(0), timedelta(days=400)),
    g=st.sampled_from(list(Granularity)),
)
def test_buckets_tile_the_range(a: datetime, length: timedelta, g: Granularity) -> None:
    b = a + length
    got = kpis.split_buckets(a, b, g)
    if a == b:
        assert got == []
        return
    assert got[0].start == a
    assert got[-1].end == b
    assert all(x.end == y.start for x, y in itertools.pairwise(got))
    assert all(x.start < x.end for x in got)
    # Every inner boundary is a period start.
    for bucket in got[1:]:
        s = bucket.start
        assert (s.hour, s.minute, s.second, s.microsecond) == (0, 0, 0, 0)
        if g is Granularity.WEEK:
            assert s.weekday() == 0
        if g is Granularity.MONTH:
            assert s.day == 1


def test_active_window_is_thirty_days_by_default() -> None:
    assert kpis.active_window(_utc(2026, 3, 31)) == Bucket(_utc(2026, 3, 1), _utc(2026, 3, 31))
    with pytest.raises(ValueError, match="positive"):
        kpis.active_window(_utc(2026, 3, 31), days=0)


# --------------------------------------------------------------------------- ratios


def test_member_growth_rate() -> None:
    assert kpis.member_growth_rate(200, 250) == pytest.approx(0.25)
    assert kpis.member_growth_rate(200, 150) == pytest.approx(-0.25)
    assert kpis.member_growth_rate(0, 10) is None


def test_activity_rate() -> None:
    assert kpis.activity_rate(30, 120) == pytest.approx(0.25)
    assert kpis.activity_rate(0, 0) is None


def test_repurchase_rate() -> None:
    assert kpis.repurchase_rate(3, 12) == pytest.approx(0.25)
    assert kpis.repurchase_rate(0, 0) is None
    with pytest.raises(ValueError, match="cannot exceed"):
        kpis.repurchase_rate(5, 4)
    # counts 0, 1, 2, 5, 1 → 4 buyers, 2 of them repeat
    assert kpis.repurchase_rate_from_counts([0, 1, 2, 5, 1]) == pytest.approx(0.5)
    assert kpis.repurchase_rate_from_counts([0, 0]) is None


def test_average_order_value() -> None:
    assert kpis.average_order_value(10_050, 4) == pytest.approx(2512.5)
    assert kpis.average_order_value(0, 0) is None


def test_purchase_frequency() -> None:
    assert kpis.purchase_frequency(15, 10) == pytest.approx(1.5)
    assert kpis.purchase_frequency(0, 0) is None


def test_member_share_of_sales() -> None:
    assert kpis.member_share_of_sales(7_500, 10_000) == pytest.approx(0.75)
    assert kpis.member_share_of_sales(0, 0) is None


def test_redemption_rate() -> None:
    assert kpis.redemption_rate(250, 1_000) == pytest.approx(0.25)
    assert kpis.redemption_rate(0, 0) is None


def test_points_liability() -> None:
    # (1,000 available + 500 pending) × 0.5 minor units per point
    assert kpis.points_liability(1_000, 500, 0.5) == pytest.approx(750.0)
    assert kpis.points_liability(0, 0, 0.5) == 0.0


def test_tier_distribution() -> None:
    got = kpis.tier_distribution({"basic": 6, "silver": 3, "gold": 1, "diamond": 0})
    assert got == pytest.approx({"basic": 0.6, "silver": 0.3, "gold": 0.1, "diamond": 0.0})
    assert kpis.tier_distribution({"basic": 0, "gold": 0}) == {"basic": None, "gold": None}
    assert kpis.tier_distribution({}) == {}


def test_negative_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="orders"):
        kpis.purchase_frequency(-1, 3)


# --------------------------------------------------------------------------- NPS


def test_nps_hand_computed() -> None:
    # 4 promoters (9, 10, 10, 9), 3 passives (7, 8, 7), 3 detractors (0, 6, 3)
    got = kpis.nps([9, 10, 10, 9, 7, 8, 7, 0, 6, 3])
    assert (got.promoters, got.passives, got.detractors) == (4, 3, 3)
    assert got.score == pytest.approx(10.0)
    assert kpis.nps([]).score is None
    assert kpis.nps([10, 10]).score == pytest.approx(100.0)
    assert kpis.nps([6]).score == pytest.approx(-100.0)
    with pytest.raises(ValueError, match="answers are"):
        kpis.nps([11])


def test_nps_uses_latest_answer_per_member() -> None:
    answers = [
        ("m1", _utc(2026, 1, 1), 3),
        ("m1", _utc(2026, 2, 1), 10),  # replaces the 3
        ("m2", _utc(2026, 2, 1), 9),
        ("m2", _utc(2026, 1, 1), 0),  # older, arrives late: ignored
        ("m3", _utc(2026, 1, 5), 7),
    ]
    latest = kpis.latest_answers(answers)
    assert latest == {"m1": 10, "m2": 9, "m3": 7}
    assert kpis.nps(latest.values()).score == pytest.approx(100.0 * 2 / 3)
