"""Tier rules: the ladder, the rolling qualifying value, upgrades, downgrades, progress.

Pure functions over plain values; every rule takes `now` as an argument. The rules
chosen where DESIGN.md §4 is silent are written down in docs/decisions/0003-tier-rules.md.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

TierCode = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,40}$")]
Direction = Literal["upgrade", "downgrade", "initial"]


class QualifyingMetric(StrEnum):
    SPEND = "spend"  # net spend in minor units of the programme currency
    POINTS = "points"  # points earned, net of reversals
    ORDERS = "orders"  # orders placed, net of fully refunded orders


class ChangeReason(StrEnum):
    ENROLLED = "enrolled"
    THRESHOLD_REACHED = "threshold_reached"
    PROTECTION_ENDED = "protection_ended"
    REFUND_REVOKED = "refund_revoked"


class UnknownTierError(LookupError):
    """The member's tier code is not on the ladder (it was removed by ops)."""


def printable(value: str) -> str:
    """Names and perks are stored as given: control characters (NUL, which PostgreSQL cannot
    store in JSONB, and the like) are refused with a 422 naming the field."""
    if any(not character.isprintable() for character in value):
        raise ValueError("must not contain control characters")
    return value


class TierDefinition(BaseModel):
    """One rung of the ladder. `threshold` is in metric units (minor units for spend)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: TierCode
    name: Annotated[str, Field(min_length=1, max_length=100)]
    rank: Annotated[int, Field(ge=0)]
    threshold: Annotated[int, Field(ge=0)]
    multiplier: Annotated[Decimal, Field(gt=0, max_digits=6, decimal_places=4)] = Decimal(1)
    perks: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = ()

    @field_validator("name")
    @classmethod
    def _name_printable(cls, name: str) -> str:
        return printable(name)

    @field_validator("perks")
    @classmethod
    def _perks_printable(cls, perks: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(printable(perk) for perk in perks)


class Ladder(BaseModel):
    """The configured ladder; `tiers` are kept sorted by rank (lowest first)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: QualifyingMetric = QualifyingMetric.SPEND
    window_days: Annotated[int, Field(ge=1, le=3660)] = 365
    protection_days: Annotated[int, Field(ge=0, le=3660)] = 365
    minor_digits: Annotated[int, Field(ge=0, le=4)] = 2
    revoke_on_refund: bool = True
    tiers: Annotated[tuple[TierDefinition, ...], Field(min_length=1)]

    @field_validator("tiers")
    @classmethod
    def _valid_rungs(cls, tiers: tuple[TierDefinition, ...]) -> tuple[TierDefinition, ...]:
        """Sorted by rank; unique codes and ranks; thresholds from 0, strictly increasing."""
        ordered = tuple(sorted(tiers, key=lambda t: t.rank))
        _require_unique("code", [t.code for t in ordered])
        _require_unique("rank", [t.rank for t in ordered])
        if ordered[0].threshold != 0:
            raise ValueError(
                f"tiers[{ordered[0].code}].threshold: the lowest tier must start at 0, "
                f"got {ordered[0].threshold}"
            )
        for lower, higher in itertools.pairwise(ordered):
            if higher.threshold <= lower.threshold:
                raise ValueError(
                    f"tiers[{higher.code}].threshold: must be greater than "
                    f"{lower.code}'s {lower.threshold}, got {higher.threshold}"
                )
        return ordered

    def tier(self, code: str) -> TierDefinition:
        for definition in self.tiers:
            if definition.code == code:
                return definition
        raise UnknownTierError(f"tier {code!r} is not on the ladder")

    def tier_for_value(self, value: int) -> TierDefinition:
        """The highest tier whose threshold `value` meets (the lowest tier at worst)."""
        met = [t for t in self.tiers if t.threshold <= value]
        return met[-1] if met else self.tiers[0]

    def next_above(self, code: str) -> TierDefinition | None:
        current = self.tier(code)
        higher = [t for t in self.tiers if t.rank > current.rank]
        return higher[0] if higher else None


def _require_unique(field: str, values: list[str] | list[int]) -> None:
    seen: set[str | int] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"tiers.{field}: {value!r} is used by more than one tier")
        seen.add(value)


def default_ladder() -> Ladder:
    """basic 0 / silver 1,000.00 / gold 5,000.00 / diamond 20,000.00 on 365-day spend."""
    return Ladder(
        tiers=(
            TierDefinition(code="basic", name="Basic", rank=0, threshold=0),
            TierDefinition(
                code="silver", name="Silver", rank=1, threshold=100_000, multiplier=Decimal("1.25")
            ),
            TierDefinition(
                code="gold", name="Gold", rank=2, threshold=500_000, multiplier=Decimal("1.5")
            ),
            TierDefinition(
                code="diamond", name="Diamond", rank=3, threshold=2_000_000, multiplier=Decimal(2)
            ),
        )
    )


# ---------- qualifying value ----------


@dataclass(frozen=True, slots=True)
class Contribution:
    """A dated change of the qualifying value: positive for a purchase, negative for a refund.

    `counts_at` is when it counts in the rolling window. A refund counts at the date of the
    purchase it refunds (see `refund_contribution`), so both leave the window together.
    """

    counts_at: datetime
    value: int


def window_start(now: datetime, window_days: int) -> datetime:
    """Contributions count when window_start < counts_at <= now."""
    return now - timedelta(days=window_days)


def in_window(contribution: Contribution, now: datetime, window_days: int) -> bool:
    return window_start(now, window_days) < contribution.counts_at <= now


def _within(
    contributions: Iterable[Contribution], now: datetime, window_days: int
) -> Iterator[Contribution]:
    """The contributions `in_window`, with the window's start computed once."""
    start = window_start(now, window_days)
    return (c for c in contributions if start < c.counts_at <= now)


def rolling_value(contributions: Iterable[Contribution], now: datetime, window_days: int) -> int:
    """Net qualifying value over the rolling window ending at `now`, never below 0."""
    total = sum(c.value for c in _within(contributions, now, window_days))
    return max(total, 0)


def purchase_contribution(
    metric: QualifyingMetric, purchased_at: datetime, total_minor: int
) -> Contribution:
    """What an `order.purchased` adds; the points metric is fed by points events instead."""
    if metric is QualifyingMetric.ORDERS:
        return Contribution(purchased_at, 1)
    return Contribution(purchased_at, total_minor)


def refund_contribution(
    metric: QualifyingMetric,
    purchased_at: datetime,
    refund_minor: int,
    order_total_minor: int,
    refunded_before_minor: int,
) -> Contribution:
    """What an `order.refunded` takes away, dated at the refunded purchase.

    A refund of a purchase that has already left the window therefore changes nothing:
    that purchase no longer counts, so neither does its refund. For the orders metric an
    order stops counting when the refunds reach its whole total (one −1, never more).
    """
    if metric is QualifyingMetric.ORDERS:
        was_whole = refunded_before_minor >= order_total_minor
        now_whole = refunded_before_minor + refund_minor >= order_total_minor
        return Contribution(purchased_at, -1 if now_whole and not was_whole else 0)
    already = min(refunded_before_minor, order_total_minor)
    return Contribution(purchased_at, -min(refund_minor, order_total_minor - already))


ORDER_METRICS = (QualifyingMetric.SPEND, QualifyingMetric.ORDERS)
"""The metrics fed by the orders topic; the points metric is fed by the points topic."""


def points_reversal_contribution(
    earned_at: datetime, points: int, earned_total: int, reversed_before: int
) -> Contribution:
    """What a `points.reversed` takes away, dated at the order's `points.earned`.

    Capped so the order's reversals never take more than it earned (0 once all is taken).
    """
    return Contribution(earned_at, -min(points, max(earned_total - reversed_before, 0)))


def decision_instant(
    occurred_at: datetime, now: datetime, not_before: datetime | None = None
) -> datetime:
    """The instant an event's tier decision is taken at: its business time.

    That is the event's `occurred_at`, so a replay decides the same; never later than `now`
    (a producer's clock ahead of ours) and never before the member's last tier change
    (`not_before`), so a late event cannot move a decision back in time.
    """
    instant = min(occurred_at, now)
    return max(instant, not_before) if not_before is not None else instant


# ---------- member state and evaluation ----------


class TierState(BaseModel):
    """A member's tier and when it was reached; protection runs from `reached_at`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier_code: TierCode
    reached_at: AwareDatetime


class TierChange(BaseModel):
    """A decision to move a member; maps one-to-one onto a `tier.changed` event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_tier: str | None
    to_tier: str
    direction: Direction
    reason: ChangeReason
    qualifying_value: int
    multiplier: Decimal
    reached_at: AwareDatetime
    protected_until: AwareDatetime

    def new_state(self) -> TierState:
        return TierState(tier_code=self.to_tier, reached_at=self.reached_at)


def protected_until(state: TierState, ladder: Ladder) -> datetime:
    return state.reached_at + timedelta(days=ladder.protection_days)


def is_protected(state: TierState, ladder: Ladder, now: datetime) -> bool:
    """Protected while now < reached_at + protection_days; the boundary instant is not."""
    return now < protected_until(state, ladder)


def _change(
    from_tier: str | None,
    to: TierDefinition,
    direction: Direction,
    reason: ChangeReason,
    value: int,
    ladder: Ladder,
    now: datetime,
) -> TierChange:
    return TierChange(
        from_tier=from_tier,
        to_tier=to.code,
        direction=direction,
        reason=reason,
        qualifying_value=value,
        multiplier=to.multiplier,
        reached_at=now,
        protected_until=now + timedelta(days=ladder.protection_days),
    )


def enroll(rolling: int, ladder: Ladder, now: datetime) -> TierChange:
    """A new member's first tier: whatever their value already meets (usually the lowest)."""
    target = ladder.tier_for_value(rolling)
    return _change(None, target, "initial", ChangeReason.ENROLLED, rolling, ladder, now)


def evaluate_upgrade(
    state: TierState, rolling: int, ladder: Ladder, now: datetime
) -> TierChange | None:
    """Upgrade at once to the highest tier met, skipping levels; None if none is higher."""
    return _move_to_value(state, rolling, ladder, now, "upgrade", ChangeReason.THRESHOLD_REACHED)


def evaluate_downgrade(
    state: TierState, rolling: int, ladder: Ladder, now: datetime
) -> TierChange | None:
    """After protection, drop to the highest tier the value still meets.

    The new (lower) tier is protected afresh from `now`: a member falls at most once per
    protection period, possibly several levels at once.
    """
    if is_protected(state, ladder, now):
        return None
    return _move_to_value(state, rolling, ladder, now, "downgrade", ChangeReason.PROTECTION_ENDED)


def evaluate(state: TierState, rolling: int, ladder: Ladder, now: datetime) -> TierChange | None:
    """The daily job's rule: an upgrade if one is due, otherwise a downgrade if one is due."""
    return evaluate_upgrade(state, rolling, ladder, now) or evaluate_downgrade(
        state, rolling, ladder, now
    )


def evaluate_refund(
    state: TierState,
    rolling: int,
    ladder: Ladder,
    purchased_at: datetime,
    now: datetime,
) -> TierChange | None:
    """Revoke a tier that a now-refunded purchase bought, protection notwithstanding.

    Applies only when the refunded purchase happened no later than the moment the tier was
    reached (so it counted towards reaching it) and the value no longer meets the tier.
    Protection guards against ageing out, not against returning what earned the tier.
    """
    if not ladder.revoke_on_refund or purchased_at > state.reached_at:
        return None
    return _move_to_value(state, rolling, ladder, now, "downgrade", ChangeReason.REFUND_REVOKED)


def _move_to_value(
    state: TierState,
    rolling: int,
    ladder: Ladder,
    now: datetime,
    direction: Literal["upgrade", "downgrade"],
    reason: ChangeReason,
) -> TierChange | None:
    """A change to the tier `rolling` meets, if that tier lies in `direction`; else None."""
    current = ladder.tier(state.tier_code)
    target = ladder.tier_for_value(rolling)
    moves = target.rank > current.rank if direction == "upgrade" else target.rank < current.rank
    if not moves:
        return None
    return _change(current.code, target, direction, reason, rolling, ladder, now)


# ---------- progress ----------


class TierProgress(BaseModel):
    """What the member API shows: where the member stands and what comes next."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: QualifyingMetric
    current_tier: str
    qualifying_value: int
    next_tier: str | None
    amount_needed: int | None
    needed_by: AwareDatetime | None
    within_days: int | None
    protected_until: AwareDatetime
    downgrade_to: str | None
    amount_to_keep: int


def first_value_drop(
    contributions: Iterable[Contribution], now: datetime, window_days: int
) -> datetime | None:
    """When the rolling value will first fall: the oldest in-window instant whose net is > 0.

    Contributions at the same instant are netted, so a purchase refunded in full (both
    dated at the purchase) does not count as a drop.
    """
    net_by_instant: dict[datetime, int] = defaultdict(int)
    for c in _within(contributions, now, window_days):
        net_by_instant[c.counts_at] += c.value
    positive = sorted(at for at, net in net_by_instant.items() if net > 0)
    return positive[0] + timedelta(days=window_days) if positive else None


def progress(
    state: TierState,
    contributions: Iterable[Contribution],
    ladder: Ladder,
    now: datetime,
) -> TierProgress:
    """Progress to the next tier.

    `amount_needed` is next threshold − current value. It holds only until `needed_by`,
    the instant the oldest value still in the window leaves it (after that more is
    needed); `within_days` is the whole days from `now` to `needed_by`, rounded down.
    Both are None when nothing in the window will leave (the amount holds indefinitely).
    `downgrade_to` is the tier a downgrade evaluated today would give, ignoring
    protection (None if the member would keep the tier).
    """
    items = list(contributions)
    value = rolling_value(items, now, ladder.window_days)
    current = ladder.tier(state.tier_code)
    upcoming = ladder.next_above(current.code)
    needed_by = first_value_drop(items, now, ladder.window_days) if upcoming else None
    meets = ladder.tier_for_value(value)
    return TierProgress(
        metric=ladder.metric,
        current_tier=current.code,
        qualifying_value=value,
        next_tier=upcoming.code if upcoming else None,
        amount_needed=max(upcoming.threshold - value, 0) if upcoming else None,
        needed_by=needed_by,
        within_days=(needed_by - now).days if needed_by else None,
        protected_until=protected_until(state, ladder),
        downgrade_to=meets.code if meets.rank < current.rank else None,
        amount_to_keep=max(current.threshold - value, 0),
    )


def format_amount(amount: int, metric: QualifyingMetric, minor_digits: int) -> str:
    """230_00 → "230.00" for spend (thousands separated), plain integers otherwise."""
    if metric is not QualifyingMetric.SPEND or minor_digits == 0:
        return f"{amount:,}"
    units, minor = divmod(amount, 10**minor_digits)
    return f"{units:,}.{minor:0{minor_digits}d}"


def describe_progress(p: TierProgress, ladder: Ladder) -> str:
    """A sentence like "spend 230.00 more within 41 days to reach gold"."""
    if p.next_tier is None or p.amount_needed is None:
        return f"{p.current_tier} is the highest tier"
    amount = format_amount(p.amount_needed, p.metric, ladder.minor_digits)
    n = p.amount_needed
    wanted = {
        QualifyingMetric.SPEND: f"spend {amount} more",
        QualifyingMetric.POINTS: f"earn {amount} more {'point' if n == 1 else 'points'}",
        QualifyingMetric.ORDERS: f"place {amount} more {'order' if n == 1 else 'orders'}",
    }[p.metric]
    deadline = f" within {_days(p.within_days)}" if p.within_days is not None else ""
    return f"{wanted}{deadline} to reach {p.next_tier}"


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"
