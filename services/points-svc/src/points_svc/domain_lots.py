"""Shared mechanics of lots: choosing lots to take from, merging changes, bucketing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from points_svc.domain_model import Allocation, ExpiringPoints, Lot


@dataclass(frozen=True)
class Taking:
    """Lots changed by taking points from them, the allocations made, and the total taken."""

    lots: tuple[Lot, ...]
    allocations: tuple[Allocation, ...]
    taken: int


def take_soonest_expiring(
    lots: Iterable[Lot], points: int, eligible: Callable[[Lot], bool]
) -> Taking:
    """Take up to `points` from eligible lots, soonest-expiring first."""
    changed: list[Lot] = []
    allocations: list[Allocation] = []
    left = points
    for lot in sorted(filter(eligible, lots), key=_expiry_order):
        if left == 0:
            break
        part = min(lot.remaining, left)
        if part == 0:
            continue
        changed.append(replace(lot, remaining=lot.remaining - part))
        allocations.append(Allocation(lot.lot_id, -part))
        left -= part
    return Taking(tuple(changed), tuple(allocations), points - left)


def _expiry_order(lot: Lot) -> tuple[datetime, datetime, str]:
    # Ties broken by availability then id so the choice of lots is deterministic.
    return (lot.expires_at, lot.available_at, str(lot.lot_id))


def merge_lots(lots: tuple[Lot, ...], changed: Iterable[Lot]) -> tuple[Lot, ...]:
    """`lots` with each changed lot replaced by its new state (new ids are appended)."""
    updates = {lot.lot_id: lot for lot in changed}
    merged = tuple(updates.pop(lot.lot_id, lot) for lot in lots)
    return merged + tuple(updates.values())


def by_expiry_date(lots: Iterable[Lot]) -> tuple[ExpiringPoints, ...]:
    """Remaining points summed per UTC calendar date of expiry, earliest first."""
    buckets: defaultdict[datetime, int] = defaultdict(int)
    for lot in lots:
        buckets[_utc_midnight(lot.expires_at)] += lot.remaining
    return tuple(
        ExpiringPoints(expires_on=day.date(), points=points)
        for day, points in sorted(buckets.items())
        if points > 0
    )


def _utc_midnight(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


def require_aware(now: datetime) -> None:
    """Refuse naive datetimes: comparing them with the lots' aware dates would be wrong."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (UTC)")
