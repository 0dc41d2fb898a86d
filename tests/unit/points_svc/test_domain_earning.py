"""Earning arithmetic: rate, exclusions, multiplier rounding, discounts, refund rounding."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from points_svc.domain import (
    EarningRules,
    OrderEarning,
    PurchaseLine,
    eligible_spend_minor,
    points_for_purchase,
    reversal_due,
    round_half_up,
)

RULES = EarningRules()


def line(category: str, price_minor: int, quantity: int = 1) -> PurchaseLine:
    return PurchaseLine(category=category, quantity=quantity, unit_price_minor=price_minor)


def test_one_point_per_currency_unit_by_default() -> None:
    assert points_for_purchase([line("books", 12_345)], RULES) == 123


def test_quantity_multiplies_the_unit_price() -> None:
    assert points_for_purchase([line("books", 1_000, quantity=3)], RULES) == 30


def test_configured_rate_applies() -> None:
    rules = EarningRules(rate_per_unit=Decimal("2.5"))
    assert points_for_purchase([line("books", 1_000)], rules) == 25


def test_minor_units_per_unit_is_configurable() -> None:
    # A currency without minor units (JPY): 1 point per 100 yen at rate 0.01.
    rules = EarningRules(minor_units_per_unit=1, rate_per_unit=Decimal("0.01"))
    assert points_for_purchase([line("books", 1_999)], rules) == 19


def test_excluded_categories_earn_nothing() -> None:
    lines = [line("books", 5_000), line("gift_card", 10_000)]
    assert points_for_purchase(lines, RULES) == 50


def test_only_excluded_lines_earn_zero() -> None:
    assert points_for_purchase([line("gift_card", 10_000)], RULES) == 0


def test_exclusions_are_configuration() -> None:
    rules = EarningRules(excluded_categories=frozenset({"tobacco"}))
    lines = [line("tobacco", 5_000), line("gift_card", 1_000)]
    assert points_for_purchase(lines, rules) == 10


@pytest.mark.parametrize(
    ("spend_minor", "multiplier", "expected"),
    [
        (10_000, Decimal("1.25"), 125),
        (999, Decimal("1.25"), 12),  # 12.4875 floors
        (7_99, Decimal("1.5"), 11),  # 11.985 floors
        (10_050, Decimal("2.0"), 201),
        (3_33, Decimal("3"), 9),  # 9.99 floors, no float error
    ],
)
def test_tier_multiplier_floors_the_product(
    spend_minor: int, multiplier: Decimal, expected: int
) -> None:
    assert points_for_purchase([line("books", spend_minor)], RULES, multiplier) == expected


def test_exact_products_do_not_lose_a_point_to_rounding() -> None:
    # 0.1 × 3 in binary floats is 0.30000000000000004 / 0.2999…; exact maths gives 3.
    rules = EarningRules(rate_per_unit=Decimal("0.1"))
    assert points_for_purchase([line("books", 1_000)], rules, Decimal(3)) == 3


def test_order_discount_is_shared_over_lines_in_proportion() -> None:
    lines = (line("books", 10_000), line("gift_card", 5_000))
    # Paid 120.00 of 150.00: the books carry 4/5 of 120.00 = 80.00.
    assert eligible_spend_minor(lines, 12_000, RULES) == Fraction(8_000)
    assert points_for_purchase(lines, RULES, total_minor=12_000) == 80


def test_shipping_above_the_lines_earns_nothing() -> None:
    lines = (line("books", 10_000),)
    assert points_for_purchase(lines, RULES, total_minor=10_599) == 100


def test_empty_or_free_order_earns_nothing() -> None:
    assert points_for_purchase([], RULES) == 0
    assert points_for_purchase([line("books", 0)], RULES, total_minor=0) == 0


def test_negative_multiplier_is_refused() -> None:
    with pytest.raises(ValueError, match="multiplier"):
        points_for_purchase([line("books", 100)], RULES, Decimal(-1))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate_per_unit": Decimal(-1)},
        {"minor_units_per_unit": 0},
        {"pending_days": -1},
        {"expiry_days": 0},
        {"expiring_reminder_days": -1},
    ],
)
def test_invalid_rules_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        EarningRules(**kwargs)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(5, 2), 3),
        (Fraction(7, 2), 4),
        (Fraction(249, 100), 2),
        (Fraction(0), 0),
        (Fraction(-5, 2), -3),
    ],
)
def test_round_half_up(value: Fraction, expected: int) -> None:
    assert round_half_up(value) == expected


def order(earned: int, total: int, refunded: int = 0, reversed_points: int = 0) -> OrderEarning:
    return OrderEarning(
        order_id="o-1",
        lot_id=None,
        earned_points=earned,
        total_minor=total,
        refunded_minor=refunded,
        reversed_points=reversed_points,
    )


def test_reversal_is_proportional_and_rounds_half_up() -> None:
    assert reversal_due(order(125, 10_000), 5_000) == 63  # 62.5 → 63
    assert reversal_due(order(125, 10_000), 10_000) == 125


def test_partial_refunds_add_up_to_the_full_reversal() -> None:
    # Three refunds of a third: 3.33 → 3, then 6.67 → 7 (4 more), then 10 (3 more).
    first = reversal_due(order(10, 300), 100)
    second = reversal_due(order(10, 300, refunded=100, reversed_points=first), 100)
    third = reversal_due(order(10, 300, refunded=200, reversed_points=first + second), 100)
    assert (first, second, third) == (3, 4, 3)


def test_refund_beyond_the_total_never_reverses_more_than_earned() -> None:
    assert reversal_due(order(50, 5_000), 9_000) == 50
    assert reversal_due(order(50, 5_000, refunded=5_000, reversed_points=50), 100) == 0


def test_order_that_earned_nothing_reverses_nothing() -> None:
    assert reversal_due(order(0, 5_000), 5_000) == 0
    assert reversal_due(order(0, 0), 100) == 0
