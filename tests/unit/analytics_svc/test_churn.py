"""Churn-risk rule and its once-per-episode emission."""

from __future__ import annotations

import numpy as np
import pytest
from analytics_svc import churn
from analytics_svc.churn import ChurnReason
from hypothesis import given, settings
from hypothesis import strategies as st


def test_typical_interpurchase_time_is_median_mean_gap_of_repeat_buyers() -> None:
    # repeat buyers' mean gaps: 60/2 = 30, 10/1 = 10, 90/3 = 30 → median 30; x = 0 ignored
    assert churn.typical_interpurchase_time([2, 1, 3, 0], [60, 10, 90, 0]) == 30.0
    assert churn.typical_interpurchase_time([0, 0], [0, 0]) is None


def test_repeat_buyers_use_p_alive_threshold() -> None:
    got = churn.assess_churn_risk(
        x=[3, 3, 1], recency=[500, 500, 500], p_alive=[0.29, 0.3, 0.8], typical_gap=30.0
    )
    np.testing.assert_array_equal(got.at_risk, [True, False, False])  # strictly under 0.3
    np.testing.assert_allclose(got.score, [0.71, 0.7, 0.2])
    np.testing.assert_array_equal(got.reason, [ChurnReason.P_ALIVE, 0, 0])


def test_one_time_buyers_use_recency_multiple() -> None:
    # gap 30 days, default multiple 3 → at risk strictly beyond 90 days
    got = churn.assess_churn_risk(
        x=[0, 0, 0], recency=[89, 90, 91], p_alive=[1.0, 1.0, 1.0], typical_gap=30.0
    )
    np.testing.assert_array_equal(got.at_risk, [False, False, True])
    np.testing.assert_array_equal(got.reason, [0, 0, ChurnReason.RECENCY])
    # score = 1 − 2^(−recency/gap): 0.875 at exactly 3 gaps
    assert got.score[1] == pytest.approx(0.875)
    assert ChurnReason(int(got.reason[2])).label == "recency"


def test_custom_threshold_and_multiple() -> None:
    got = churn.assess_churn_risk(
        x=[0, 2], recency=[50, 5], p_alive=[1.0, 0.45], typical_gap=10.0, threshold=0.5, multiple=4
    )
    np.testing.assert_array_equal(got.at_risk, [True, True])


def test_without_repeat_buyers_no_one_time_buyer_is_at_risk() -> None:
    got = churn.assess_churn_risk(x=[0], recency=[10_000], p_alive=[1.0], typical_gap=None)
    assert not got.at_risk[0]
    assert got.score[0] == 0.0


def test_episode_emits_once_until_the_next_purchase() -> None:
    state = np.array([False])
    emitted = []
    # day 1: enters risk → emit; day 2, 3: still at risk → silent;
    # day 4: purchase re-arms, and not at risk; day 5: at risk again → emit.
    for at_risk, purchased in [
        (True, False),
        (True, False),
        (True, False),
        (False, True),
        (True, False),
    ]:
        step = churn.step_episodes(state, [at_risk], [purchased])
        emitted.append(bool(step.emit[0]))
        state = step.in_episode
    assert emitted == [True, False, False, False, True]


def test_leaving_risk_without_purchase_does_not_rearm() -> None:
    s1 = churn.step_episodes([False], [True], [False])
    s2 = churn.step_episodes(s1.in_episode, [False], [False])
    s3 = churn.step_episodes(s2.in_episode, [True], [False])
    assert (bool(s1.emit[0]), bool(s2.emit[0]), bool(s3.emit[0])) == (True, False, False)


def test_purchase_and_risk_in_same_evaluation_opens_a_new_episode() -> None:
    step = churn.step_episodes([True], [True], [True])
    assert bool(step.emit[0])
    assert bool(step.in_episode[0])


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=40),
)
def test_at_most_one_emission_between_purchases(steps: list[tuple[bool, bool]]) -> None:
    state = np.array(False)
    since_purchase = 0
    for at_risk, purchased in steps:
        if purchased:
            since_purchase = 0
        step = churn.step_episodes(state, at_risk, purchased)
        since_purchase += int(step.emit)
        assert since_purchase <= 1
        if at_risk:
            assert bool(step.in_episode)
        state = step.in_episode


@settings(max_examples=100, deadline=None)
@given(r1=st.floats(0, 1e4), r2=st.floats(0, 1e4), gap=st.floats(0.5, 365))
def test_one_time_score_increases_with_recency(r1: float, r2: float, gap: float) -> None:
    lo, hi = sorted((r1, r2))
    got = churn.assess_churn_risk([0, 0], [lo, hi], [1.0, 1.0], gap)
    assert 0.0 <= got.score[0] <= got.score[1] <= 1.0
    assert not (got.at_risk[0] and not got.at_risk[1])
