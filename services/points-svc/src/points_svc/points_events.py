"""The `points.*` payloads a posting announces (handlers, REST and jobs share these)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from memberflow_events.payloads import (
    PointsAdjusted,
    PointsEarned,
    PointsExpired,
    PointsExpiring,
    PointsReleased,
    PointsReversed,
)

from points_svc.domain import (
    Account,
    EntryKind,
    ExpiringPoints,
    LedgerEntry,
    Posting,
    Release,
    total_balance,
)

SERVICE = "points-svc"


def balance_after(account: Account, now: datetime) -> int:
    """`balance_after` of every points event: available + pending − debt at `now`."""
    return total_balance(account, now)


def earned(
    posting: Posting,
    now: datetime,
    *,
    multiplier: Decimal = Decimal(1),
    campaign_id: UUID | None = None,
) -> PointsEarned | None:
    """points.earned for a credit posting (None when it credited nothing)."""
    if not posting.entries or not posting.lots:
        return None
    entry, lot = posting.entries[0], posting.lots[0]
    return PointsEarned(
        lot_id=lot.lot_id,
        points=entry.points,
        source=lot.source.kind,
        order_id=entry.order_id,
        campaign_id=campaign_id,
        multiplier=multiplier,
        debt_repaid=-entry.debt_change,
        available_at=lot.available_at,
        expires_at=lot.expires_at,
        balance_after=balance_after(posting.account, now),
    )


def reversed_for_refund(posting: Posting, refund_id: str, now: datetime) -> PointsReversed | None:
    """points.reversed: the whole reversal counted against the order (ADR 0002 R18)."""
    if not posting.entries or posting.order is None:
        return None
    entry = posting.entries[0]
    points = -entry.points + entry.waived
    if points <= 0:
        return None
    return PointsReversed(
        order_id=posting.order.order_id,
        refund_id=refund_id,
        points=points,
        debt_points=entry.debt_change,
        balance_after=balance_after(posting.account, now),
    )


def adjusted(entry: LedgerEntry, account: Account, now: datetime) -> PointsAdjusted:
    assert entry.actor is not None
    assert entry.reason is not None
    return PointsAdjusted(
        points=entry.points,
        actor=entry.actor,
        reason=entry.reason,
        balance_after=balance_after(account, now),
    )


def expired(posting: Posting, now: datetime) -> list[PointsExpired]:
    """One points.expired per written-off lot."""
    after = balance_after(posting.account, now)
    return [
        PointsExpired(lot_id=allocation.lot_id, points=-entry.points, balance_after=after)
        for entry in posting.entries
        if entry.kind is EntryKind.EXPIRE and entry.points < 0
        for allocation in entry.allocations[:1]
    ]


def released(releases: tuple[Release, ...]) -> list[PointsReleased]:
    return [
        PointsReleased(lot_id=release.lot_id, points=release.points)
        for release in releases
        if release.points > 0
    ]


def expiring(reminders: tuple[ExpiringPoints, ...]) -> list[PointsExpiring]:
    return [
        PointsExpiring(points=reminder.points, expires_on=reminder.expires_on)
        for reminder in reminders
        if reminder.points > 0
    ]
