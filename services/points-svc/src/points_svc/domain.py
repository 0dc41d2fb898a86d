"""Points ledger rules (DESIGN.md §4): pure functions from an `Account` to a `Posting`.

No I/O and no clock: every operation takes `now` (timezone-aware UTC) and ids from the
caller, and returns the new account plus exactly what to persist. The rules chosen where
DESIGN.md is silent are recorded in docs/decisions/0002-points-ledger-rules.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from points_svc.domain_earning import (
    eligible_spend_minor,
    points_for_purchase,
    reversal_due,
    round_half_up,
)
from points_svc.domain_jobs import (
    available_points,
    balance,
    expire,
    expiring_reminders,
    release,
    total_balance,
)
from points_svc.domain_lots import merge_lots, require_aware, take_soonest_expiring
from points_svc.domain_model import (
    Account,
    Allocation,
    Balance,
    DuplicateLot,
    EarningRules,
    EntryKind,
    ExpiringPoints,
    InsufficientPoints,
    InvalidAdjustment,
    InvalidPoints,
    InvalidRefund,
    LedgerEntry,
    LifetimeTotals,
    Lot,
    OrderEarning,
    PointsError,
    Posting,
    Purchase,
    PurchaseLine,
    Release,
    Source,
    SourceKind,
    UnloadedLots,
    Violation,
)
from points_svc.domain_reconcile import reconcile

__all__ = [
    "Account",
    "Allocation",
    "Balance",
    "DuplicateLot",
    "EarningRules",
    "EntryKind",
    "ExpiringPoints",
    "InsufficientPoints",
    "InvalidAdjustment",
    "InvalidPoints",
    "InvalidRefund",
    "LedgerEntry",
    "LifetimeTotals",
    "Lot",
    "OrderEarning",
    "PointsError",
    "Posting",
    "Purchase",
    "PurchaseLine",
    "Release",
    "Source",
    "SourceKind",
    "UnloadedLots",
    "Violation",
    "adjust",
    "available_points",
    "balance",
    "credit",
    "earn",
    "eligible_spend_minor",
    "expire",
    "expiring_reminders",
    "points_for_purchase",
    "reconcile",
    "redeem",
    "release",
    "reversal_due",
    "reverse_for_refund",
    "round_half_up",
    "total_balance",
]

_CREDIT_KINDS: dict[SourceKind, EntryKind] = {
    "order": EntryKind.EARN,
    "bonus": EntryKind.BONUS,
    "referral": EntryKind.REFERRAL,
    "adjustment": EntryKind.ADJUST,
}


# ---------- credits ----------


def earn(
    account: Account,
    purchase: Purchase,
    rules: EarningRules,
    multiplier: Decimal,
    lot_id: UUID,
    now: datetime,
    bonus_points: int = 0,
) -> Posting:
    """Credit what a purchase earns (plus order bonuses) as one lot, pending per the rules.

    The posting's `order` records the earning so later refunds can reverse it; an order
    that earns nothing gets an `OrderEarning` without a lot.
    """
    require_aware(now)
    if bonus_points < 0:
        raise InvalidPoints(bonus_points, "zero or positive for an order bonus")
    points = (
        points_for_purchase(purchase.lines, rules, multiplier, purchase.total_minor) + bonus_points
    )
    order = OrderEarning(
        order_id=purchase.order_id,
        lot_id=lot_id if points > 0 else None,
        earned_points=points,
        total_minor=purchase.total_minor,
    )
    if points == 0:
        return Posting(account=account, order=order)
    posting = _credit(
        account,
        points,
        Source("order", purchase.order_id),
        lot_id,
        available_at=now + rules.pending_period,
        now=now,
        rules=rules,
    )
    return replace(posting, order=order)


def credit(
    account: Account,
    points: int,
    source: Source,
    lot_id: UUID,
    now: datetime,
    rules: EarningRules,
) -> Posting:
    """Credit points available at once (campaign bonus, referral); debt is repaid first.

    Orders go through `earn` (pending, refunds) and ops corrections through `adjust`
    (actor and reason), so those sources are refused here.
    """
    require_aware(now)
    if source.kind not in ("bonus", "referral"):
        raise ValueError(f"credit() takes bonus or referral sources, not {source.kind!r}")
    return _credit(account, points, source, lot_id, available_at=now, now=now, rules=rules)


def _credit(
    account: Account,
    points: int,
    source: Source,
    lot_id: UUID,
    *,
    available_at: datetime,
    now: datetime,
    rules: EarningRules,
    actor: str | None = None,
    reason: str | None = None,
) -> Posting:
    if points <= 0:
        raise InvalidPoints(points, "positive for a credit")
    if account.lot(lot_id) is not None:
        raise DuplicateLot(lot_id)
    repaid = min(points, account.debt)
    lot = Lot(
        lot_id=lot_id,
        source=source,
        original=points,
        remaining=points - repaid,
        available_at=available_at,
        expires_at=available_at + rules.lifetime,
        released=available_at <= now,
    )
    kind = _CREDIT_KINDS[source.kind]
    entry = LedgerEntry(
        kind=kind,
        points=points,
        occurred_at=now,
        allocations=(Allocation(lot_id, lot.remaining),),
        debt_change=-repaid,
        order_id=source.reference if source.kind == "order" else None,
        reference=source.reference,
        actor=actor,
        reason=reason,
    )
    totals = account.totals
    if kind is EntryKind.ADJUST:
        totals = replace(totals, adjusted=totals.adjusted + points)
    else:
        totals = replace(totals, earned=totals.earned + points)
    new_account = replace(
        account, lots=(*account.lots, lot), debt=account.debt - repaid, totals=totals
    )
    return Posting(account=new_account, entries=(entry,), lots=(lot,))


# ---------- debits ----------


def redeem(account: Account, points: int, now: datetime, reference: str | None = None) -> Posting:
    """Spend available points, soonest-expiring lots first; never overdraws.

    Raises InsufficientPoints when fewer points are available than requested.
    """
    require_aware(now)
    account.require_all_lots()
    if points <= 0:
        raise InvalidPoints(points, "positive to redeem")
    spendable = available_points(account, now)
    if points > spendable:
        raise InsufficientPoints(available=spendable, requested=points)
    taking = take_soonest_expiring(account.lots, points, lambda lot: lot.is_spendable(now))
    entry = LedgerEntry(
        kind=EntryKind.REDEEM,
        points=-points,
        occurred_at=now,
        allocations=taking.allocations,
        reference=reference,
    )
    totals = replace(account.totals, redeemed=account.totals.redeemed + points)
    new_account = replace(account, lots=merge_lots(account.lots, taking.lots), totals=totals)
    return Posting(account=new_account, entries=(entry,), lots=taking.lots)


def reverse_for_refund(
    account: Account,
    order: OrderEarning,
    refund_id: str,
    refund_minor: int,
    now: datetime,
) -> Posting:
    """Take back round(earned × refunded / total) points for a (partial) refund.

    Points come from the order's own lot first (even pending or overdue), then from that
    lot's points already lost to expiry (waived: not taken twice), then from other live
    lots soonest-expiring first (pending included); the rest becomes debt. A refund id
    seen before changes nothing.
    """
    require_aware(now)
    account.require_all_lots()
    if refund_minor <= 0:
        raise InvalidRefund(f"refund amount must be positive, got {refund_minor}")
    if refund_id in order.refund_ids:
        return Posting(account=account, order=order)
    due = reversal_due(order, refund_minor)
    updated_order = replace(
        order,
        refunded_minor=min(order.refunded_minor + refund_minor, order.total_minor),
        reversed_points=order.reversed_points + due,
        refund_ids=order.refund_ids | {refund_id},
    )
    if due == 0:
        return Posting(account=account, order=updated_order)
    return replace(
        _reverse(account, order, refund_id, due, now),
        order=updated_order,
    )


def _reverse(
    account: Account, order: OrderEarning, refund_id: str, due: int, now: datetime
) -> Posting:
    own = _take_from_own_lot(account.lot(order.lot_id) if order.lot_id else None, due)
    lots = merge_lots(account.lots, own.lots)
    left = due - own.taken - own.waived
    others = take_soonest_expiring(
        lots, left, lambda lot: lot.is_live(now) and lot.lot_id != order.lot_id
    )
    debt_added = left - others.taken
    reversed_points = own.taken + others.taken + debt_added
    entry = LedgerEntry(
        kind=EntryKind.REVERSE,
        points=-reversed_points,
        occurred_at=now,
        allocations=own.allocations + others.allocations,
        debt_change=debt_added,
        order_id=order.order_id,
        reference=refund_id,
        waived=own.waived,
    )
    totals = replace(account.totals, reversed=account.totals.reversed + reversed_points)
    new_account = Account(
        lots=merge_lots(lots, others.lots), debt=account.debt + debt_added, totals=totals
    )
    return Posting(account=new_account, entries=(entry,), lots=merge_lots(own.lots, others.lots))


@dataclass(frozen=True)
class _OwnLotShare:
    lots: tuple[Lot, ...]
    allocations: tuple[Allocation, ...]
    taken: int
    waived: int


def _take_from_own_lot(own: Lot | None, due: int) -> _OwnLotShare:
    """The order's own lot gives first: its remaining points, then its expired ones.

    Remaining points go even when pending or overdue: they are this order's points.
    Points the lot already lost to expiry count as taken back (waived), because the
    member never had the use of them and must not lose them a second time.
    """
    if own is None:
        return _OwnLotShare((), (), 0, 0)
    taken = min(own.remaining, due)
    waived = min(own.forfeited, due - taken)
    if taken == 0 and waived == 0:
        return _OwnLotShare((), (), 0, 0)
    lot = replace(own, remaining=own.remaining - taken, forfeited=own.forfeited - waived)
    allocations = (Allocation(own.lot_id, -taken),) if taken else ()
    return _OwnLotShare((lot,), allocations, taken, waived)


def adjust(
    account: Account,
    points: int,
    *,
    actor: str,
    reason: str,
    lot_id: UUID,
    now: datetime,
    rules: EarningRules,
) -> Posting:
    """An ops correction, + or −, attributed to an actor with a reason.

    A positive adjustment is a credit (new lot `lot_id`, available at once, repays debt
    first). A negative one takes from live lots soonest-expiring first (pending included)
    and records what they cannot cover as debt; `lot_id` is then unused.
    """
    require_aware(now)
    if not actor.strip() or not reason.strip():
        raise InvalidAdjustment("an adjustment needs a non-blank actor and reason")
    if points == 0:
        raise InvalidPoints(points, "non-zero for an adjustment")
    if points > 0:
        return _credit(
            account,
            points,
            Source("adjustment"),
            lot_id,
            available_at=now,
            now=now,
            rules=rules,
            actor=actor,
            reason=reason,
        )
    return _debit_adjustment(account, -points, actor, reason, now)


def _debit_adjustment(
    account: Account, points: int, actor: str, reason: str, now: datetime
) -> Posting:
    account.require_all_lots()
    taking = take_soonest_expiring(account.lots, points, lambda lot: lot.is_live(now))
    debt_added = points - taking.taken
    entry = LedgerEntry(
        kind=EntryKind.ADJUST,
        points=-points,
        occurred_at=now,
        allocations=taking.allocations,
        debt_change=debt_added,
        actor=actor,
        reason=reason,
    )
    totals = replace(account.totals, adjusted=account.totals.adjusted - points)
    new_account = Account(
        lots=merge_lots(account.lots, taking.lots), debt=account.debt + debt_added, totals=totals
    )
    return Posting(account=new_account, entries=(entry,), lots=taking.lots)
