"""Campaign uplift: conversion of treatment vs control within N days of exposure.

The 95 % interval for the difference of two independent proportions is Newcombe's hybrid
score interval (Newcombe 1998, Statistics in Medicine 17:873–890, method 10), built from
the two Wilson score intervals. Unlike the Wald interval it stays inside [−1, 1], is not
degenerate when a group converts 0 % or 100 %, and keeps close to nominal coverage for the
small control groups campaigns typically hold back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist

DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class UpliftResult:
    treatment_rate: float | None  # None when the group is empty
    control_rate: float | None
    difference: float | None  # treatment − control; None if either group is empty
    interval: Interval | None  # Newcombe hybrid score interval for the difference
    confidence: float


def converted(exposed_at: datetime, purchase_times: Iterable[datetime], window_days: int) -> bool:
    """True when a purchase falls in [exposed_at, exposed_at + window_days)."""
    if window_days <= 0:
        raise ValueError("window_days must be positive")
    end = exposed_at + timedelta(days=window_days)
    return any(exposed_at <= t < end for t in purchase_times)


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(
    successes: int, trials: int, confidence: float = DEFAULT_CONFIDENCE
) -> Interval:
    """Wilson score interval for one proportion (trials > 0)."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError("need trials > 0 and 0 <= successes <= trials")
    z = _z(confidence)
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    denominator = 1 + z2 / trials
    return Interval(
        max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)
    )


def newcombe_interval(
    successes_1: int,
    trials_1: int,
    successes_2: int,
    trials_2: int,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Interval:
    """Newcombe hybrid score interval for p1 − p2."""
    p1, p2 = successes_1 / trials_1, successes_2 / trials_2
    w1 = wilson_interval(successes_1, trials_1, confidence)
    w2 = wilson_interval(successes_2, trials_2, confidence)
    d = p1 - p2
    low = d - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
    high = d + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high))


def uplift(
    treatment_conversions: int,
    treatment_exposed: int,
    control_conversions: int,
    control_exposed: int,
    confidence: float = DEFAULT_CONFIDENCE,
) -> UpliftResult:
    """Conversion rates, their difference and its Newcombe interval.

    An empty group has no rate; then the difference and interval are None too.
    """
    for name, value in (
        ("treatment_conversions", treatment_conversions),
        ("treatment_exposed", treatment_exposed),
        ("control_conversions", control_conversions),
        ("control_exposed", control_exposed),
    ):
        if value < 0:
            raise ValueError(f"{name} must be >= 0")
    if treatment_conversions > treatment_exposed or control_conversions > control_exposed:
        raise ValueError("conversions cannot exceed exposures")
    _z(confidence)
    rate_t = treatment_conversions / treatment_exposed if treatment_exposed else None
    rate_c = control_conversions / control_exposed if control_exposed else None
    if rate_t is None or rate_c is None:
        return UpliftResult(rate_t, rate_c, None, None, confidence)
    interval = newcombe_interval(
        treatment_conversions, treatment_exposed, control_conversions, control_exposed, confidence
    )
    return UpliftResult(rate_t, rate_c, rate_t - rate_c, interval, confidence)
