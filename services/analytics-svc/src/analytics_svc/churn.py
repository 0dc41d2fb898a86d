"""Churn risk: who is at risk now, and when to emit member.churn_risk (once per episode).

Rule (DESIGN.md §4, made exact in docs/analytics.md):
- Repeat buyers (x >= 1 repeat purchase occasions): at risk when BG/NBD P(alive) < threshold
  (default 0.3); score = 1 − P(alive); reason "p_alive".
- One-time buyers (x = 0; BG/NBD P(alive) is identically 1 for them, so it cannot be used):
  at risk when recency > multiple × G (default multiple 3), where G, the population's typical
  inter-purchase time, is the median over repeat buyers of their mean gap t_x / x.
  score = 1 − 2^(−recency / G): the share of an exponential gap distribution with median G
  that would have ended by now (0.875 at the default cut-off); reason "recency".
- Episodes: member.churn_risk is emitted when a member enters risk and no episode is open;
  the episode stays open (no further events, even if the member leaves and re-enters risk)
  until the member's next purchase closes it — the purchase re-arms the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

DEFAULT_P_ALIVE_THRESHOLD = 0.3
DEFAULT_RECENCY_MULTIPLE = 3.0

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]


class ChurnReason(IntEnum):
    NONE = 0
    P_ALIVE = 1  # repeat buyer, P(alive) under the threshold
    RECENCY = 2  # one-time buyer, recency past multiple × typical inter-purchase time

    @property
    def label(self) -> str:
        return {0: "none", 1: "p_alive", 2: "recency"}[self.value]


@dataclass(frozen=True, slots=True)
class ChurnAssessment:
    at_risk: BoolArray
    score: FloatArray  # 0..1, higher = more likely lost
    reason: NDArray[np.int8]  # ChurnReason values; NONE where not at risk


@dataclass(frozen=True, slots=True)
class EpisodeStep:
    emit: BoolArray  # publish member.churn_risk now
    in_episode: BoolArray  # state to store for the next evaluation


def typical_interpurchase_time(x: ArrayLike, t_x: ArrayLike) -> float | None:
    """Median over repeat buyers (x >= 1) of t_x / x; None when nobody has repurchased."""
    xa = np.asarray(x, dtype=np.float64)
    txa = np.asarray(t_x, dtype=np.float64)
    repeat = xa > 0
    if not np.any(repeat):
        return None
    return float(np.median(txa[repeat] / xa[repeat]))


def assess_churn_risk(
    x: ArrayLike,
    recency: ArrayLike,
    p_alive: ArrayLike,
    typical_gap: float | None,
    *,
    threshold: float = DEFAULT_P_ALIVE_THRESHOLD,
    multiple: float = DEFAULT_RECENCY_MULTIPLE,
) -> ChurnAssessment:
    """Per-member risk now. recency and typical_gap share one time unit (days in the service).

    With typical_gap None or <= 0 (no repeat buyers yet) no one-time buyer is at risk.
    """
    if not 0 <= threshold <= 1 or multiple <= 0:
        raise ValueError("need 0 <= threshold <= 1 and multiple > 0")
    xa = np.asarray(x, dtype=np.float64)
    rec = np.asarray(recency, dtype=np.float64)
    pa = np.asarray(p_alive, dtype=np.float64)
    repeat = xa > 0
    repeat_risk = repeat & (pa < threshold)
    if typical_gap is None or typical_gap <= 0:
        once_risk = np.zeros(xa.shape, dtype=np.bool_)
        once_score = np.zeros(xa.shape)
    else:
        once_risk = ~repeat & (rec > multiple * typical_gap)
        once_score = 1.0 - np.exp2(-np.maximum(rec, 0.0) / typical_gap)
    score = np.where(repeat, 1.0 - pa, once_score)
    reason = np.where(
        repeat_risk, ChurnReason.P_ALIVE, np.where(once_risk, ChurnReason.RECENCY, 0)
    ).astype(np.int8)
    return ChurnAssessment(at_risk=repeat_risk | once_risk, score=score, reason=reason)


def step_episodes(
    in_episode: ArrayLike, at_risk: ArrayLike, purchased_since_last: ArrayLike
) -> EpisodeStep:
    """One evaluation of the episode rule for many members (or one, with scalars).

    A purchase since the last evaluation closes any open episode first (re-arming); then a
    member at risk with no open episode emits and opens one.
    """
    open_ = np.asarray(in_episode, dtype=np.bool_) & ~np.asarray(
        purchased_since_last, dtype=np.bool_
    )
    risk = np.asarray(at_risk, dtype=np.bool_)
    return EpisodeStep(emit=risk & ~open_, in_episode=open_ | risk)
