"""Arithmetic of earning and reversing: exact rational maths, rounding in one place."""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction

from points_svc.domain_model import EarningRules, OrderEarning, PurchaseLine


def eligible_spend_minor(
    lines: Iterable[PurchaseLine], total_minor: int, rules: EarningRules
) -> Fraction:
    """Spend that earns: lines outside excluded categories, net of order-level discounts.

    When the order total is below the sum of its lines (an order-level discount), the
    discount is shared out over the lines in proportion to their amounts. When it is
    above (shipping, fees), the surplus earns nothing.
    """
    lines = tuple(lines)
    lines_minor = sum(line.amount_minor for line in lines)
    eligible = sum(
        line.amount_minor for line in lines if line.category not in rules.excluded_categories
    )
    if lines_minor == 0:
        return Fraction(0)
    if total_minor < lines_minor:
        return Fraction(eligible * max(total_minor, 0), lines_minor)
    return Fraction(eligible)


def points_for_purchase(
    lines: Iterable[PurchaseLine],
    rules: EarningRules,
    multiplier: Decimal = Decimal(1),
    total_minor: int | None = None,
) -> int:
    """floor(eligible spend / minor_units_per_unit × rate × multiplier), computed exactly.

    `total_minor` (the order total) only matters when it is below the lines' sum; leave it
    out to earn on the lines as they are.
    """
    if multiplier < 0:
        raise ValueError("multiplier must not be negative")
    lines = tuple(lines)
    if total_minor is None:
        total_minor = sum(line.amount_minor for line in lines)
    spend = eligible_spend_minor(lines, total_minor, rules)
    points = (
        spend / rules.minor_units_per_unit * Fraction(rules.rate_per_unit) * Fraction(multiplier)
    )
    return math.floor(points)


def round_half_up(value: Fraction) -> int:
    """Round to the nearest integer, halves away from zero (non-negative input: up)."""
    if value < 0:
        return -round_half_up(-value)
    return math.floor(value + Fraction(1, 2))


def reversal_due(order: OrderEarning, refund_minor: int) -> int:
    """Points a new refund must reverse: round(earned × refunded / total), cumulatively.

    The target is computed on the cumulative refunded amount (capped at the order total)
    and what earlier refunds reversed is subtracted, so partial refunds never drift from
    a single full refund and never reverse more than the order earned.
    """
    if order.total_minor <= 0 or order.earned_points <= 0:
        return 0
    refunded = min(order.refunded_minor + refund_minor, order.total_minor)
    target = round_half_up(Fraction(order.earned_points * refunded, order.total_minor))
    target = min(target, order.earned_points)
    return max(target - order.reversed_points, 0)
