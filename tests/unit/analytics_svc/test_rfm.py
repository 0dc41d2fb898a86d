"""RFM quintile rule, tie handling, segment map and inputs from order rows."""

from __future__ import annotations

import numpy as np
import pytest
from analytics_svc import rfm
from hypothesis import given, settings
from hypothesis import strategies as st


def test_distinct_values_split_into_exact_quintiles() -> None:
    values = np.arange(10) * 7  # 10 distinct values → two per score
    np.testing.assert_array_equal(rfm.quintile_scores(values), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5])


def test_quintile_boundaries_with_uneven_n() -> None:
    # n = 7: score = 1 + floor(5k/7) for k = 0..6 → 1, 1, 2, 3, 3, 4, 5
    np.testing.assert_array_equal(
        rfm.quintile_scores([10, 20, 30, 40, 50, 60, 70]), [1, 1, 2, 3, 3, 4, 5]
    )


def test_ties_get_the_score_of_their_first_position() -> None:
    # Six members bought once, two twice, two 5 times: frequency 1 is k=0 → 1,
    # frequency 2 has 6 members below → 1 + floor(30/10) = 4; frequency 5 → 1 + 4 = 5.
    values = [1, 1, 1, 1, 1, 1, 2, 2, 5, 5]
    np.testing.assert_array_equal(rfm.quintile_scores(values), [1] * 6 + [4, 4, 5, 5])


def test_recency_fewer_days_scores_higher() -> None:
    # k = number of members with strictly MORE days.
    np.testing.assert_array_equal(
        rfm.quintile_scores([0, 3, 3, 10, 400], higher_is_better=False), [5, 3, 3, 2, 1]
    )


def test_single_member_and_empty_input() -> None:
    np.testing.assert_array_equal(rfm.quintile_scores([42]), [1])
    np.testing.assert_array_equal(rfm.quintile_scores([42], higher_is_better=False), [1])
    assert rfm.quintile_scores([]).size == 0


def test_all_equal_values_score_one() -> None:
    np.testing.assert_array_equal(rfm.quintile_scores([5, 5, 5, 5]), [1, 1, 1, 1])


def test_fm_rounds_half_up() -> None:
    np.testing.assert_array_equal(
        rfm.combine_fm([1, 1, 2, 5, 4, 3], [1, 2, 3, 5, 5, 4]), [1, 2, 3, 5, 5, 4]
    )


@pytest.mark.parametrize(
    ("r", "fm", "name"),
    [
        (5, 5, "Champions"),
        (5, 4, "Champions"),
        (4, 5, "Champions"),
        (4, 4, "Loyal"),
        (3, 5, "Loyal"),
        (5, 2, "Potential loyalist"),
        (4, 3, "Potential loyalist"),
        (5, 1, "New"),
        (4, 1, "Promising"),
        (3, 3, "Need attention"),
        (3, 1, "About to sleep"),
        (2, 3, "At risk"),
        (1, 4, "Can't lose them"),
        (2, 5, "Can't lose them"),
        (2, 1, "Hibernating"),
        (1, 1, "Lost"),
        (1, 2, "Lost"),
    ],
)
def test_segment_map(r: int, fm: int, name: str) -> None:
    assert rfm.segment_names(rfm.segment_codes([r], [fm])) == [name]


def test_every_segment_is_reachable_and_grid_is_complete() -> None:
    assert rfm.SEGMENT_GRID.shape == (5, 5)
    assert set(rfm.SEGMENT_GRID.ravel().tolist()) == set(range(len(rfm.SEGMENTS)))


def test_segment_codes_reject_out_of_range_scores() -> None:
    with pytest.raises(ValueError, match=r"1\.\.5"):
        rfm.segment_codes([0], [3])


def test_score_rfm_and_segment_counts() -> None:
    recency = [1, 2, 3, 4, 5, 300, 310, 320, 330, 340]
    frequency = [9, 8, 7, 6, 5, 4, 3, 2, 1, 1]
    monetary = [900, 800, 700, 600, 500, 400, 300, 200, 100, 100]
    s = rfm.score_rfm(recency, frequency, monetary)
    np.testing.assert_array_equal(s.r, [5, 5, 4, 4, 3, 3, 2, 2, 1, 1])
    np.testing.assert_array_equal(s.f, [5, 5, 4, 4, 3, 3, 2, 2, 1, 1])
    np.testing.assert_array_equal(s.m, s.f)
    counts = rfm.segment_counts(s.segment)
    assert list(counts) == list(rfm.SEGMENTS)
    assert sum(counts.values()) == 10
    assert counts["Champions"] == 2
    assert counts["Loyal"] == 2
    assert counts["Need attention"] == 2
    assert counts["Hibernating"] == 2
    assert counts["Lost"] == 2
    assert counts["New"] == 0


def test_rfm_inputs_from_orders() -> None:
    # as_of_day 1000, window (635, 1000].
    member = [1, 1, 1, 1, 2, 2, 3]
    day = [100, 900, 900, 990, 500, 700, 1001]
    amount = [5000, 100, 200, 300, 40, 60, 999]  # member 3 only after as_of_day
    got = rfm.rfm_inputs(member, day, amount, as_of_day=1000)
    np.testing.assert_array_equal(got.member, [1, 2])
    np.testing.assert_array_equal(got.recency_days, [10, 300])
    np.testing.assert_array_equal(got.frequency, [2, 1])  # two distinct days for member 1
    np.testing.assert_array_equal(got.monetary, [600, 60])


def test_rfm_inputs_member_without_purchase_in_window_keeps_frequency_zero() -> None:
    got = rfm.rfm_inputs([4], [10], [500], as_of_day=1000)
    np.testing.assert_array_equal(got.recency_days, [990])
    np.testing.assert_array_equal(got.frequency, [0])
    np.testing.assert_array_equal(got.monetary, [0])


def test_purchase_occasions_merge_same_day() -> None:
    members, days, amounts = rfm.purchase_occasions([2, 1, 2, 2], [5, 3, 5, 6], [10, 1, 20, 30])
    np.testing.assert_array_equal(members, [1, 2, 2])
    np.testing.assert_array_equal(days, [3, 5, 6])
    np.testing.assert_array_equal(amounts, [1, 30, 30])


_values = st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=200)


@settings(max_examples=200, deadline=None)
@given(values=_values)
def test_equal_values_always_get_equal_scores(values: list[int]) -> None:
    scores = rfm.quintile_scores(values)
    by_value: dict[int, set[int]] = {}
    for v, s in zip(values, scores.tolist(), strict=True):
        by_value.setdefault(v, set()).add(s)
    assert all(len(s) == 1 for s in by_value.values())


@settings(max_examples=200, deadline=None)
@given(values=_values, higher=st.booleans())
def test_scores_are_monotone_and_in_range(values: list[int], higher: bool) -> None:
    scores = rfm.quintile_scores(values, higher_is_better=higher)
    assert scores.min() >= 1
    assert scores.max() <= 5
    order = np.argsort(values, kind="stable")
    ordered = scores[order] if higher else scores[order][::-1]
    assert np.all(np.diff(ordered.astype(int)) >= 0)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.integers(), min_size=5, max_size=300, unique=True))
def test_distinct_values_fill_each_quintile_evenly(values: list[int]) -> None:
    counts = np.bincount(rfm.quintile_scores(values), minlength=6)[1:]
    n = len(values)
    assert counts.sum() == n
    assert counts.max() - counts.min() <= 1
