"""RFM: recency / frequency / monetary scores 1–5 and named segments. Pure, vectorised.

Quintile rule (docs/analytics.md): among the n scored members, a member's score is
    1 + floor(5 · k / n)
where k is the number of members whose value is strictly *worse* (frequency, monetary:
strictly smaller; recency: strictly more days). Equal values therefore always get the same
score — the score of the first position of their tie group in the sorted order — and with
n distinct values the bottom fifth scores 1, ..., the top fifth 5. Heavy ties can skip
scores (e.g. 60 % with frequency 1 → F scores 1, 4, 5 only); that is intended.

Segments come from a 5×5 grid over R and FM = round-half-up((F + M) / 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

IntArray = NDArray[np.int64]
ScoreArray = NDArray[np.int8]

SEGMENTS: tuple[str, ...] = (
    "Champions",
    "Loyal",
    "Potential loyalist",
    "New",
    "Promising",
    "Need attention",
    "About to sleep",
    "At risk",
    "Can't lose them",
    "Hibernating",
    "Lost",
)

# Rows: R = 1..5 (top to bottom); columns: FM = 1..5. Values are indices into SEGMENTS.
_GRID_NAMES: tuple[tuple[str, ...], ...] = (
    ("Lost", "Lost", "At risk", "Can't lose them", "Can't lose them"),
    ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"),
    ("About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"),
    ("Promising", "Potential loyalist", "Potential loyalist", "Loyal", "Champions"),
    ("New", "Potential loyalist", "Potential loyalist", "Champions", "Champions"),
)
SEGMENT_GRID: NDArray[np.int8] = np.array(
    [[SEGMENTS.index(name) for name in row] for row in _GRID_NAMES], dtype=np.int8
)

DEFAULT_WINDOW_DAYS = 365


@dataclass(frozen=True, slots=True)
class RfmInputs:
    """One row per member with at least one purchase occasion up to as_of_day."""

    member: IntArray
    recency_days: IntArray  # as_of_day − last occasion day (0 = bought today)
    frequency: IntArray  # distinct purchase days in the window (may be 0)
    monetary: IntArray  # net minor units in the window


@dataclass(frozen=True, slots=True)
class RfmScores:
    r: ScoreArray
    f: ScoreArray
    m: ScoreArray
    fm: ScoreArray
    segment: NDArray[np.int8]  # index into SEGMENTS


def purchase_occasions(
    member: ArrayLike, day: ArrayLike, amount_minor: ArrayLike
) -> tuple[IntArray, IntArray, IntArray]:
    """Collapse order rows to one row per (member, day), summing amounts.

    Returned rows are sorted by member then day. Same-day orders of one member are one
    purchase occasion, as in the CLV literature (Fader, Hardie & Lee 2005).
    """
    members = np.asarray(member, dtype=np.int64)
    days = np.asarray(day, dtype=np.int64)
    amounts = np.asarray(amount_minor, dtype=np.int64)
    if members.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    order = np.lexsort((days, members))
    members, days, amounts = members[order], days[order], amounts[order]
    new = np.r_[True, (members[1:] != members[:-1]) | (days[1:] != days[:-1])]
    starts = np.flatnonzero(new)
    return members[starts], days[starts], np.add.reduceat(amounts, starts)


def rfm_inputs(
    member: ArrayLike,
    day: ArrayLike,
    amount_minor: ArrayLike,
    as_of_day: int,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> RfmInputs:
    """Recency, frequency and monetary per member from order rows (days as integers).

    Rows are orders with their net amount (refunds subtracted from their own order).
    Orders with net amount <= 0 are not purchase occasions but still count in monetary.
    The window is (as_of_day − window_days, as_of_day]; rows after as_of_day are ignored.
    """
    members = np.asarray(member, dtype=np.int64)
    days = np.asarray(day, dtype=np.int64)
    amounts = np.asarray(amount_minor, dtype=np.int64)
    upto = days <= as_of_day
    members, days, amounts = members[upto], days[upto], amounts[upto]
    occ_member, occ_day, _ = purchase_occasions(
        members[amounts > 0], days[amounts > 0], amounts[amounts > 0]
    )
    if occ_member.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return RfmInputs(empty, empty, empty, empty)
    scored, first = np.unique(occ_member, return_index=True)
    last = np.r_[first[1:], occ_member.size] - 1
    in_window = occ_day > as_of_day - window_days
    frequency = np.add.reduceat(in_window.astype(np.int64), first)
    window_rows = (days > as_of_day - window_days) & np.isin(members, scored)
    position = np.searchsorted(scored, members[window_rows])
    monetary = np.bincount(position, weights=amounts[window_rows], minlength=scored.size)
    return RfmInputs(
        member=scored,
        recency_days=as_of_day - occ_day[last],
        frequency=frequency,
        monetary=np.rint(monetary).astype(np.int64),
    )


def quintile_scores(values: ArrayLike, *, higher_is_better: bool = True) -> ScoreArray:
    """Score 1–5 = 1 + floor(5·k/n), k = number of strictly worse values (see module doc)."""
    v = np.asarray(values)
    n = v.size
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    ordered = np.sort(v)
    if higher_is_better:
        worse = np.searchsorted(ordered, v, side="left")
    else:
        worse = n - np.searchsorted(ordered, v, side="right")
    return (1 + (5 * worse.astype(np.int64)) // n).astype(np.int8)


def combine_fm(f: ArrayLike, m: ArrayLike) -> ScoreArray:
    """FM = (F + M) / 2 rounded half up, so FM is again 1–5."""
    return ((np.asarray(f, dtype=np.int64) + np.asarray(m, dtype=np.int64) + 1) // 2).astype(
        np.int8
    )


def segment_codes(r: ArrayLike, fm: ArrayLike) -> NDArray[np.int8]:
    """Vectorised lookup in SEGMENT_GRID; returns indices into SEGMENTS."""
    ra = np.asarray(r, dtype=np.int64)
    fma = np.asarray(fm, dtype=np.int64)
    if np.any((ra < 1) | (ra > 5) | (fma < 1) | (fma > 5)):
        raise ValueError("scores must be in 1..5")
    return SEGMENT_GRID[ra - 1, fma - 1]


def segment_names(codes: ArrayLike) -> list[str]:
    return [SEGMENTS[int(c)] for c in np.asarray(codes).ravel()]


def score_rfm(recency_days: ArrayLike, frequency: ArrayLike, monetary: ArrayLike) -> RfmScores:
    """R, F, M quintile scores, FM and segment for members with at least one purchase."""
    rec, freq, mon = np.asarray(recency_days), np.asarray(frequency), np.asarray(monetary)
    if not (rec.shape == freq.shape == mon.shape):
        raise ValueError("recency_days, frequency and monetary must have the same shape")
    r = quintile_scores(rec, higher_is_better=False)
    f = quintile_scores(freq)
    m = quintile_scores(mon)
    fm = combine_fm(f, m)
    return RfmScores(r=r, f=f, m=m, fm=fm, segment=segment_codes(r, fm))


def segment_counts(codes: ArrayLike) -> dict[str, int]:
    """Members per segment, every segment present (0 when empty), in SEGMENTS order."""
    counts = np.bincount(np.asarray(codes, dtype=np.int64).ravel(), minlength=len(SEGMENTS))
    return {name: int(counts[i]) for i, name in enumerate(SEGMENTS)}
