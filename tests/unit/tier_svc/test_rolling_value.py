from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from tier_svc.domain import (
    Contribution,
    QualifyingMetric,
    first_value_drop,
    purchase_contribution,
    refund_contribution,
    rolling_value,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


def test_sums_purchases_inside_the_window() -> None:
    items = [Contribution(days_ago(10), 50_000), Contribution(days_ago(300), 30_000)]
    assert rolling_value(items, NOW, 365) == 80_000


def test_window_excludes_the_instant_exactly_window_days_ago() -> None:
    items = [Contribution(days_ago(365), 50_000), Contribution(days_ago(364.99), 1)]
    assert rolling_value(items, NOW, 365) == 1


def test_window_includes_now_and_excludes_the_future() -> None:
    items = [Contribution(NOW, 7), Contribution(NOW + timedelta(seconds=1), 1_000)]
    assert rolling_value(items, NOW, 365) == 7


def test_refund_lowers_the_value() -> None:
    bought = days_ago(20)
    items = [
        purchase_contribution(QualifyingMetric.SPEND, bought, 120_000),
        refund_contribution(QualifyingMetric.SPEND, bought, 30_000, 120_000, 0),
    ]
    assert rolling_value(items, NOW, 365) == 90_000


def test_refund_of_a_purchase_older_than_the_window_changes_nothing() -> None:
    old = days_ago(400)
    items = [
        Contribution(days_ago(5), 10_000),
        purchase_contribution(QualifyingMetric.SPEND, old, 50_000),
        refund_contribution(QualifyingMetric.SPEND, old, 50_000, 50_000, 0),
    ]
    assert rolling_value(items, NOW, 365) == 10_000


def test_refunds_never_take_more_than_the_order_total() -> None:
    first = refund_contribution(QualifyingMetric.SPEND, NOW, 80, 100, 0)
    second = refund_contribution(QualifyingMetric.SPEND, NOW, 80, 100, 80)
    third = refund_contribution(QualifyingMetric.SPEND, NOW, 80, 100, 160)
    assert (first.value, second.value, third.value) == (-80, -20, 0)


def test_refund_is_dated_at_the_purchase() -> None:
    bought = days_ago(100)
    assert refund_contribution(QualifyingMetric.SPEND, bought, 1, 10, 0).counts_at == bought


def test_orders_metric_counts_one_per_order_and_drops_it_when_fully_refunded() -> None:
    bought = days_ago(3)
    assert purchase_contribution(QualifyingMetric.ORDERS, bought, 9_999).value == 1
    partial = refund_contribution(QualifyingMetric.ORDERS, bought, 4_000, 9_999, 0)
    rest = refund_contribution(QualifyingMetric.ORDERS, bought, 5_999, 9_999, 4_000)
    again = refund_contribution(QualifyingMetric.ORDERS, bought, 1, 9_999, 9_999)
    assert (partial.value, rest.value, again.value) == (0, -1, 0)


def test_value_never_goes_below_zero() -> None:
    assert rolling_value([Contribution(days_ago(1), -500)], NOW, 365) == 0


def test_first_value_drop_is_when_the_oldest_purchase_leaves() -> None:
    items = [Contribution(days_ago(300), 10), Contribution(days_ago(10), 10)]
    assert first_value_drop(items, NOW, 365) == days_ago(300) + timedelta(days=365)


def test_first_value_drop_ignores_fully_refunded_purchases() -> None:
    items = [
        Contribution(days_ago(300), 10),
        Contribution(days_ago(300), -10),
        Contribution(days_ago(10), 10),
    ]
    assert first_value_drop(items, NOW, 365) == days_ago(10) + timedelta(days=365)


def test_first_value_drop_is_none_without_positive_contributions() -> None:
    assert first_value_drop([], NOW, 365) is None


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=800), st.integers(-1_000, 100_000)),
        max_size=30,
    )
)
def test_rolling_value_equals_sum_over_window(raw: list[tuple[int, int]]) -> None:
    items = [Contribution(days_ago(d), v) for d, v in raw]
    expected = max(sum(v for d, v in raw if d < 365), 0)
    assert rolling_value(items, NOW, 365) == expected
