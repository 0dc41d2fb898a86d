"""Properties of the earning and reversal arithmetic over generated inputs."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, localcontext
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st
from points_svc.domain import (
    EarningRules,
    OrderEarning,
    PurchaseLine,
    points_for_purchase,
    reversal_due,
    round_half_up,
)

RULES = EarningRules()
categories = st.sampled_from(["books", "food", "gift_card"])
lines = st.lists(
    st.builds(PurchaseLine, categories, st.integers(1, 5), st.integers(0, 100_000)),
    max_size=6,
)
multipliers = st.decimals(0, 5, places=2)
rates = st.decimals(0, 10, places=4)


@given(lines, multipliers, rates)
def test_points_match_a_high_precision_decimal_floor(
    items: list[PurchaseLine], multiplier: Decimal, rate: Decimal
) -> None:
    rules = EarningRules(rate_per_unit=rate)
    eligible = sum(i.amount_minor for i in items if i.category != "gift_card")
    with localcontext() as ctx:
        ctx.prec = 60
        expected = (Decimal(eligible) / 100 * rate * multiplier).to_integral_value(ROUND_FLOOR)
    assert points_for_purchase(items, rules, multiplier) == int(expected)


@given(lines, multipliers, st.integers(0, 100_000))
def test_excluded_lines_never_change_the_points(
    items: list[PurchaseLine], multiplier: Decimal, gift_card_minor: int
) -> None:
    with_gift_card = [*items, PurchaseLine("gift_card", 1, gift_card_minor)]
    assert points_for_purchase(with_gift_card, RULES, multiplier) == points_for_purchase(
        items, RULES, multiplier
    )


@given(lines, st.integers(0, 1_000_000))
def test_a_discount_never_earns_more_than_the_full_price(
    items: list[PurchaseLine], total_minor: int
) -> None:
    full = points_for_purchase(items, RULES)
    assert 0 <= points_for_purchase(items, RULES, total_minor=total_minor) <= full


@given(
    earned=st.integers(0, 10_000),
    total=st.integers(1, 100_000),
    cuts=st.lists(st.integers(1, 100_000), min_size=1, max_size=8),
)
def test_partial_refunds_track_the_cumulative_rounded_target(
    earned: int, total: int, cuts: list[int]
) -> None:
    order = OrderEarning("o-1", None, earned, total)
    refunded = 0
    for cut in cuts:
        due = reversal_due(order, cut)
        assert due >= 0
        refunded = min(refunded + cut, total)
        order = OrderEarning("o-1", None, earned, total, refunded, order.reversed_points + due)
        assert order.reversed_points == round_half_up(Fraction(earned * refunded, total))
        assert order.reversed_points <= earned
    if refunded == total:
        assert order.reversed_points == earned
