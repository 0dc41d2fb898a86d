"""Uplift: conversion rates, difference and Newcombe's hybrid score interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from analytics_svc import uplift
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest


@pytest.mark.parametrize(
    ("a", "m", "b", "n", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873–890, Table II, method 10 (as also
        # asserted by the R package propint's tests).
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
    ],
)
def test_newcombe_interval_matches_published_examples(
    a: int, m: int, b: int, n: int, low: float, high: float
) -> None:
    result = uplift.uplift(a, m, b, n)
    assert result.difference == pytest.approx(a / m - b / n)
    assert result.interval is not None
    assert result.interval.low == pytest.approx(low, abs=1e-4)
    assert result.interval.high == pytest.approx(high, abs=1e-4)


@pytest.mark.parametrize(
    ("k", "confidence", "low", "high"),
    [
        # R 3.6.2 prop.test(correct=FALSE) with n = 10, as asserted in SciPy's
        # test_morestats.py (test_ci_wilson_method).
        (3, 0.95, 0.1077913, 0.6032219),
        (3, 0.99, 0.07956632, 0.6799753),
        (0, 0.95, 0.0, 0.2775328),
        (10, 0.95, 0.7224672, 1.0),
    ],
)
def test_wilson_interval_matches_r(k: int, confidence: float, low: float, high: float) -> None:
    got = uplift.wilson_interval(k, 10, confidence)
    assert got.low == pytest.approx(low, abs=1e-6)
    assert got.high == pytest.approx(high, abs=1e-6)


def test_zero_conversions_in_both_groups_still_has_an_interval() -> None:
    result = uplift.uplift(0, 10, 0, 20)
    assert result.difference == 0.0
    assert result.interval is not None
    # Upper limit = Wilson upper limit of 0/10 (0.2775), lower = −Wilson upper of 0/20.
    assert result.interval.high == pytest.approx(0.2775328, abs=1e-6)
    assert result.interval.low < 0 < result.interval.high


def test_empty_groups_have_no_difference() -> None:
    result = uplift.uplift(0, 0, 5, 10)
    assert result.treatment_rate is None
    assert result.control_rate == pytest.approx(0.5)
    assert result.difference is None
    assert result.interval is None
    assert uplift.uplift(0, 0, 0, 0).difference is None


def test_invalid_counts() -> None:
    with pytest.raises(ValueError, match="cannot exceed"):
        uplift.uplift(11, 10, 0, 10)
    with pytest.raises(ValueError, match="treatment_conversions"):
        uplift.uplift(-1, 10, 0, 10)
    with pytest.raises(ValueError, match="confidence"):
        uplift.uplift(1, 10, 0, 10, confidence=1.0)


def test_converted_window_is_half_open() -> None:
    exposed = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert uplift.converted(exposed, [exposed], 7)
    assert uplift.converted(exposed, [exposed + timedelta(days=7, seconds=-1)], 7)
    assert not uplift.converted(exposed, [exposed + timedelta(days=7)], 7)
    assert not uplift.converted(exposed, [exposed - timedelta(seconds=1)], 7)
    assert not uplift.converted(exposed, [], 7)


_group = st.integers(min_value=1, max_value=2000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)


@settings(max_examples=300, deadline=None)
@given(t=_group, c=_group)
def test_interval_contains_the_difference_and_stays_in_bounds(
    t: tuple[int, int], c: tuple[int, int]
) -> None:
    result = uplift.uplift(t[0], t[1], c[0], c[1])
    assert result.difference is not None
    assert result.interval is not None
    assert -1.0 <= result.interval.low <= result.difference <= result.interval.high <= 1.0


@settings(max_examples=200, deadline=None)
@given(group=_group, confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_matches_scipy(group: tuple[int, int], confidence: float) -> None:
    k, n = group
    ours = uplift.wilson_interval(k, n, confidence)
    theirs = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert ours.low == pytest.approx(theirs.low, abs=1e-9)
    assert ours.high == pytest.approx(theirs.high, abs=1e-9)
