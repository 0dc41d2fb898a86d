"""Scheduled work and reads of the points ledger: expiry, release, reminders, balance."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from points_svc.domain_lots import by_expiry_date, merge_lots, require_aware
from points_svc.domain_model import (
    Account,
    Allocation,
    Balance,
    EntryKind,
    ExpiringPoints,
    LedgerEntry,
    Lot,
    Posting,
    Release,
)

# ---------- jobs ----------


def expire(account: Account, now: datetime) -> Posting:
    """Write off the unspent rest of every lot whose expiry is at or before `now`."""
    require_aware(now)
    account.require_all_lots()
    entries: list[LedgerEntry] = []
    changed: list[Lot] = []
    for lot in account.lots:
        if lot.remaining > 0 and lot.is_expired(now):
            entries.append(_expiry_entry(lot, now))
            changed.append(replace(lot, remaining=0, forfeited=lot.forfeited + lot.remaining))
    written_off = -sum(entry.points for entry in entries)
    totals = replace(account.totals, expired=account.totals.expired + written_off)
    new_account = replace(account, lots=merge_lots(account.lots, changed), totals=totals)
    return Posting(account=new_account, entries=tuple(entries), lots=tuple(changed))


def _expiry_entry(lot: Lot, now: datetime) -> LedgerEntry:
    return LedgerEntry(
        kind=EntryKind.EXPIRE,
        points=-lot.remaining,
        occurred_at=now,
        allocations=(Allocation(lot.lot_id, -lot.remaining),),
        order_id=lot.source.reference if lot.source.kind == "order" else None,
        reference=str(lot.lot_id),
    )


def release(account: Account, now: datetime) -> tuple[Posting, tuple[Release, ...]]:
    """Mark lots whose pending period has ended as released, once each.

    Returns a `Release` (for `points.released`) per lot that still holds live points;
    lots emptied while pending are marked without one.
    """
    require_aware(now)
    account.require_all_lots()
    due = [lot for lot in account.lots if not lot.released and not lot.is_pending(now)]
    changed = tuple(replace(lot, released=True) for lot in due)
    releases = tuple(
        Release(lot.lot_id, lot.remaining, released_at=now) for lot in due if lot.is_live(now)
    )
    posting = Posting(
        account=replace(account, lots=merge_lots(account.lots, changed)), lots=changed
    )
    return posting, releases


def expiring_reminders(
    account: Account, now: datetime, days_ahead: int
) -> tuple[Posting, tuple[ExpiringPoints, ...]]:
    """Points expiring within `days_ahead` not yet announced, grouped by UTC expiry date.

    Lots are marked reminded so a rerun (or a job that missed a day) announces each lot
    exactly once.
    """
    require_aware(now)
    account.require_all_lots()
    horizon = now + timedelta(days=days_ahead)
    due = tuple(
        lot
        for lot in account.lots
        if lot.is_live(now) and not lot.reminded and lot.expires_at <= horizon
    )
    changed = tuple(replace(lot, reminded=True) for lot in due)
    posting = Posting(
        account=replace(account, lots=merge_lots(account.lots, changed)), lots=changed
    )
    return posting, by_expiry_date(due)


# ---------- reading ----------


def available_points(account: Account, now: datetime) -> int:
    """Points that can be spent now: not pending, not expired."""
    account.require_all_lots()
    return sum(lot.remaining for lot in account.lots if lot.is_spendable(now))


def total_balance(account: Account, now: datetime) -> int:
    """`balance(account, now).total` in one pass (every points event carries it)."""
    require_aware(now)
    live = sum(lot.remaining for lot in account.lots if lot.remaining > 0 and lot.expires_at > now)
    if account.unloaded is not None:
        if now > account.unloaded.until:
            raise ValueError(
                f"the balance at {now} needs the lots left in storage (loaded up to "
                f"{account.unloaded.until})"
            )
        live += account.unloaded.points
    return live - account.debt


def balance(account: Account, now: datetime, expiring_within_days: int = 30) -> Balance:
    """The balance at `now`; expired points never count, whether or not the job has run.

    The account may leave in storage released lots that expire after the expiring-soon
    horizon: all of them are available, and none is listed as expiring soon.
    """
    require_aware(now)
    horizon = now + timedelta(days=expiring_within_days)
    stored = account.unloaded
    if stored is not None and (not stored.released or stored.until < horizon):
        account.require_all_lots()
    live = [lot for lot in account.lots if lot.is_live(now)]
    return Balance(
        available=sum(lot.remaining for lot in live if not lot.is_pending(now))
        + (stored.points if stored is not None else 0),
        pending=sum(lot.remaining for lot in live if lot.is_pending(now)),
        debt=account.debt,
        expiring_soon=by_expiry_date(lot for lot in live if lot.expires_at <= horizon),
        lifetime_earned=account.totals.earned - account.totals.reversed,
        lifetime_redeemed=account.totals.redeemed,
    )
