"""Ledger operations by example: each DESIGN §4 rule and each rule of ADR 0002."""

from __future__ import annotations

from dataclasses import astuple
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any
from uuid import UUID

import pytest
from points_svc.domain import (
    Account,
    DuplicateLot,
    EarningRules,
    EntryKind,
    ExpiringPoints,
    InsufficientPoints,
    InvalidAdjustment,
    InvalidPoints,
    InvalidRefund,
    LedgerEntry,
    Lot,
    OrderEarning,
    Posting,
    Purchase,
    PurchaseLine,
    Source,
    SourceKind,
    UnloadedLots,
    adjust,
    balance,
    credit,
    earn,
    expire,
    expiring_reminders,
    reconcile,
    redeem,
    release,
    reverse_for_refund,
    total_balance,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RULES = EarningRules()
_ids = count(1)


def new_id() -> UUID:
    return UUID(int=next(_ids))


def days(n: float) -> timedelta:
    return timedelta(days=n)


def purchase(order_id: str, spend_minor: int) -> Purchase:
    return Purchase(order_id, spend_minor, (PurchaseLine("books", 1, spend_minor),))


class Ledger:
    """An account plus every entry posted to it, so tests can reconcile."""

    def __init__(self, rules: EarningRules = RULES) -> None:
        self.rules = rules
        self.account = Account()
        self.entries: list[LedgerEntry] = []
        self.orders: dict[str, OrderEarning] = {}

    def post(self, posting: Posting) -> Posting:
        self.account = posting.account
        self.entries.extend(posting.entries)
        if posting.order is not None:
            self.orders[posting.order.order_id] = posting.order
        return posting

    def earn(self, order_id: str, spend_minor: int, now: datetime = T0, **kw: object) -> Posting:
        multiplier = kw.pop("multiplier", Decimal(1))
        assert isinstance(multiplier, Decimal)
        bonus = kw.pop("bonus_points", 0)
        assert isinstance(bonus, int)
        return self.post(
            earn(
                self.account,
                purchase(order_id, spend_minor),
                self.rules,
                multiplier,
                new_id(),
                now,
                bonus_points=bonus,
            )
        )

    def bonus(self, points: int, now: datetime = T0) -> Posting:
        return self.post(
            credit(self.account, points, Source("bonus", "award-1"), new_id(), now, self.rules)
        )

    def redeem(self, points: int, now: datetime = T0) -> Posting:
        return self.post(redeem(self.account, points, now, reference="basket-1"))

    def refund(self, order_id: str, refund_id: str, minor: int, now: datetime = T0) -> Posting:
        order = self.orders[order_id]
        return self.post(reverse_for_refund(self.account, order, refund_id, minor, now))

    def adjust(self, points: int, now: datetime = T0) -> Posting:
        return self.post(
            adjust(
                self.account,
                points,
                actor="ops:alice",
                reason="ticket 42",
                lot_id=new_id(),
                now=now,
                rules=self.rules,
            )
        )

    def expire(self, now: datetime) -> Posting:
        return self.post(expire(self.account, now))

    def available(self, now: datetime = T0) -> int:
        return balance(self.account, now).available

    def remaining(self, lot_id: UUID) -> int:
        lot = self.account.lot(lot_id)
        assert lot is not None
        return lot.remaining

    def assert_reconciles(self) -> None:
        assert reconcile(self.entries, self.account.lots, self.account.debt) == []


# ---------- earning ----------


def test_earn_creates_an_available_lot_with_a_365_day_life() -> None:
    ledger = Ledger()
    posting = ledger.earn("o-1", 10_000)
    (lot,) = posting.lots
    assert (lot.original, lot.remaining) == (100, 100)
    assert lot.source == Source("order", "o-1")
    assert lot.available_at == T0
    assert lot.expires_at == T0 + days(365)
    assert posting.entries[0].kind is EntryKind.EARN
    assert posting.entries[0].order_id == "o-1"
    assert ledger.available() == 100
    ledger.assert_reconciles()


def test_earn_applies_the_tier_multiplier_and_order_bonus() -> None:
    ledger = Ledger()
    posting = ledger.earn("o-1", 9_99, multiplier=Decimal("1.25"), bonus_points=50)
    assert posting.order is not None
    assert posting.order.earned_points == 12 + 50


def test_order_earning_nothing_records_the_order_without_a_lot() -> None:
    ledger = Ledger()
    gift_cards = Purchase("o-1", 5_000, (PurchaseLine("gift_card", 1, 5_000),))
    posting = earn(ledger.account, gift_cards, RULES, Decimal(1), new_id(), T0)
    assert posting.entries == ()
    assert posting.order == OrderEarning("o-1", None, 0, 5_000)


def test_earned_points_stay_pending_for_the_pending_period() -> None:
    ledger = Ledger(EarningRules(pending_days=14))
    (lot,) = ledger.earn("o-1", 10_000).lots
    assert lot.available_at == T0 + days(14)
    assert lot.expires_at == T0 + days(14 + 365)
    assert not lot.released
    pending = balance(ledger.account, T0)
    assert (pending.available, pending.pending) == (0, 100)
    with pytest.raises(InsufficientPoints):
        ledger.redeem(1)
    # Available at the exact instant the pending period ends.
    assert ledger.available(T0 + days(14)) == 100


def test_release_marks_lots_once_and_reports_them() -> None:
    ledger = Ledger(EarningRules(pending_days=14))
    lot_id = ledger.earn("o-1", 10_000).lots[0].lot_id
    too_early, nothing = release(ledger.account, T0 + days(13))
    assert nothing == ()
    assert too_early.lots == ()
    posting, releases = release(ledger.account, T0 + days(14))
    assert [(r.lot_id, r.points) for r in releases] == [(lot_id, 100)]
    assert posting.account.lots[0].released
    _, again = release(posting.account, T0 + days(15))
    assert again == ()


def test_campaign_bonus_is_available_at_once() -> None:
    ledger = Ledger(EarningRules(pending_days=14))
    posting = ledger.bonus(40)
    assert posting.entries[0].kind is EntryKind.BONUS
    assert ledger.available() == 40


def test_credit_with_a_used_lot_id_is_refused() -> None:
    ledger = Ledger()
    lot_id = ledger.bonus(40).lots[0].lot_id
    with pytest.raises(DuplicateLot):
        credit(ledger.account, 40, Source("bonus", "award-1"), lot_id, T0, RULES)


@pytest.mark.parametrize("kind", ["order", "adjustment"])
def test_credit_refuses_sources_that_have_their_own_operation(kind: SourceKind) -> None:
    with pytest.raises(ValueError, match="bonus or referral"):
        credit(Account(), 5, Source(kind, "x"), new_id(), T0, RULES)


def test_credit_must_be_positive() -> None:
    with pytest.raises(InvalidPoints):
        credit(Account(), 0, Source("bonus"), new_id(), T0, RULES)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        balance(Account(), datetime(2026, 1, 1))


# ---------- redeeming ----------


def test_redeem_takes_soonest_expiring_lots_first() -> None:
    ledger = Ledger()
    old = ledger.earn("o-1", 3_000, now=T0).lots[0]
    new = ledger.earn("o-2", 5_000, now=T0 + days(10)).lots[0]
    posting = ledger.redeem(40, now=T0 + days(20))
    assert [(a.lot_id, a.points) for a in posting.entries[0].allocations] == [
        (old.lot_id, -30),
        (new.lot_id, -10),
    ]
    assert ledger.remaining(old.lot_id) == 0
    assert ledger.remaining(new.lot_id) == 40
    assert posting.entries[0].points == -40
    ledger.assert_reconciles()


def test_redeem_more_than_available_is_an_error_that_says_how_much() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 5_000)
    with pytest.raises(InsufficientPoints) as raised:
        ledger.redeem(51)
    assert (raised.value.available, raised.value.requested) == (50, 51)
    assert "51 requested, 50 available" in str(raised.value)


def test_redeem_must_be_positive() -> None:
    with pytest.raises(InvalidPoints):
        redeem(Account(), 0, T0)


def test_redeem_never_spends_expired_points_before_the_job_ran() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 5_000)
    with pytest.raises(InsufficientPoints):
        ledger.redeem(1, now=T0 + days(365))


# ---------- expiry ----------


def test_expiry_boundary_is_inclusive() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 5_000)
    just_before = T0 + days(365) - timedelta(microseconds=1)
    assert ledger.available(just_before) == 50
    assert ledger.available(T0 + days(365)) == 0


def test_balance_excludes_expired_points_before_the_job_runs() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 5_000, now=T0)
    ledger.earn("o-2", 2_000, now=T0 + days(100))
    later = balance(ledger.account, T0 + days(400))
    assert (later.available, later.pending, later.total) == (20, 0, 20)
    # The books still hold the overdue lot until the job writes it off.
    ledger.assert_reconciles()


def test_expiry_job_writes_off_the_unspent_rest_per_lot() -> None:
    ledger = Ledger()
    lot = ledger.earn("o-1", 5_000).lots[0]
    ledger.redeem(20)
    posting = ledger.expire(T0 + days(365))
    (entry,) = posting.entries
    assert (entry.kind, entry.points, entry.reference) == (
        EntryKind.EXPIRE,
        -30,
        str(lot.lot_id),
    )
    assert ledger.account.totals.expired == 30
    assert ledger.expire(T0 + days(366)).entries == ()
    ledger.assert_reconciles()


def test_expiring_soon_is_bucketed_by_utc_date() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 1_000, now=T0)
    ledger.earn("o-2", 2_000, now=T0 + timedelta(hours=1))
    ledger.earn("o-3", 4_000, now=T0 + days(20))
    ledger.earn("o-4", 8_000, now=T0 + days(200))
    now = T0 + days(340)
    soon = balance(ledger.account, now, expiring_within_days=50).expiring_soon
    expiry = (T0 + days(365)).date()
    assert balance(ledger.account, now, expiring_within_days=30).expiring_soon == (
        ExpiringPoints(expiry, 30),
    )
    assert soon == (
        ExpiringPoints(expiry, 30),
        ExpiringPoints(expiry + timedelta(days=20), 40),
    )
    assert balance(ledger.account, now, expiring_within_days=10).expiring_soon == ()


def test_expiring_reminders_announce_each_lot_once() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 1_000, now=T0)
    ledger.earn("o-2", 4_000, now=T0 + days(20))
    now = T0 + days(335)  # o-1 expires in 30 days, o-2 in 50
    posting, reminders = expiring_reminders(ledger.account, now, days_ahead=30)
    assert reminders == (ExpiringPoints(date(2027, 3, 1), 10),)
    _, rerun = expiring_reminders(posting.account, now + days(1), days_ahead=30)
    assert rerun == ()
    _, later = expiring_reminders(posting.account, now + days(20), days_ahead=30)
    assert later == (ExpiringPoints(date(2027, 3, 21), 40),)


def test_no_reminder_for_spent_points() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 1_000)
    ledger.redeem(10)
    _, reminders = expiring_reminders(ledger.account, T0 + days(340), days_ahead=30)
    assert reminders == ()


# ---------- refunds ----------


def test_full_refund_reverses_everything_from_the_orders_own_lot() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 3_000, now=T0)
    own = ledger.earn("o-2", 5_000, now=T0 + days(1)).lots[0]
    posting = ledger.refund("o-2", "r-1", 5_000, now=T0 + days(2))
    (entry,) = posting.entries
    assert (entry.kind, entry.points, entry.debt_change) == (EntryKind.REVERSE, -50, 0)
    assert [(a.lot_id, a.points) for a in entry.allocations] == [(own.lot_id, -50)]
    assert (entry.order_id, entry.reference) == ("o-2", "r-1")
    assert ledger.available(T0 + days(2)) == 30
    ledger.assert_reconciles()


def test_partial_refund_reverses_proportionally_half_up() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 12_500)
    posting = ledger.refund("o-1", "r-1", 6_250)  # 62.5 → 63
    assert posting.entries[0].points == -63
    assert posting.order is not None
    assert (posting.order.refunded_minor, posting.order.reversed_points) == (6_250, 63)
    ledger.refund("o-1", "r-2", 6_250)
    assert ledger.orders["o-1"].reversed_points == 125
    assert ledger.available() == 0
    ledger.assert_reconciles()


def test_refund_takes_from_other_lots_when_the_orders_lot_was_spent() -> None:
    ledger = Ledger()
    own = ledger.earn("o-1", 5_000, now=T0).lots[0]
    other = ledger.earn("o-2", 8_000, now=T0 + days(1)).lots[0]
    ledger.redeem(60, now=T0 + days(2))  # all of o-1, 10 of o-2
    posting = ledger.refund("o-1", "r-1", 5_000, now=T0 + days(3))
    (entry,) = posting.entries
    assert [(a.lot_id, a.points) for a in entry.allocations] == [(other.lot_id, -50)]
    assert ledger.remaining(own.lot_id) == 0
    assert ledger.available(T0 + days(3)) == 20
    assert ledger.account.debt == 0
    ledger.assert_reconciles()


def test_refund_after_points_were_spent_records_debt() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 5_000)
    ledger.redeem(40)
    posting = ledger.refund("o-1", "r-1", 5_000)
    (entry,) = posting.entries
    assert (entry.points, entry.debt_change) == (-50, 40)
    assert ledger.account.debt == 40
    summary = balance(ledger.account, T0)
    assert (summary.available, summary.debt, summary.total) == (0, 40, -40)
    ledger.assert_reconciles()


def test_debt_is_repaid_first_by_the_next_credit() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 5_000)
    ledger.redeem(50)
    ledger.refund("o-1", "r-1", 5_000)
    posting = ledger.bonus(30)
    (entry,) = posting.entries
    assert (entry.points, entry.debt_change) == (30, -30)
    assert posting.lots[0].remaining == 0
    assert ledger.account.debt == 20
    posting = ledger.earn("o-2", 10_000)
    assert posting.lots[0].remaining == 80
    assert ledger.account.debt == 0
    assert ledger.available() == 80
    ledger.assert_reconciles()


def test_pending_credit_repays_debt_immediately() -> None:
    ledger = Ledger(EarningRules(pending_days=14))
    ledger.bonus(50)
    ledger.redeem(50)
    ledger.adjust(-20)
    assert ledger.account.debt == 20
    posting = ledger.earn("o-1", 5_000)
    assert posting.lots[0].remaining == 30
    assert ledger.account.debt == 0
    assert balance(ledger.account, T0).pending == 30


def test_refund_takes_pending_points_of_other_orders_before_recording_debt() -> None:
    ledger = Ledger(EarningRules(pending_days=14))
    ledger.earn("o-1", 5_000, now=T0)
    ledger.redeem(50, now=T0 + days(14))
    other = ledger.earn("o-2", 3_000, now=T0 + days(15)).lots[0]
    posting = ledger.refund("o-1", "r-1", 5_000, now=T0 + days(16))
    (entry,) = posting.entries
    assert [(a.lot_id, a.points) for a in entry.allocations] == [(other.lot_id, -30)]
    assert entry.debt_change == 20
    ledger.assert_reconciles()


def test_the_same_refund_id_is_applied_once() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 5_000)
    ledger.refund("o-1", "r-1", 1_000)
    again = ledger.refund("o-1", "r-1", 1_000)
    assert again.entries == ()
    assert ledger.orders["o-1"].reversed_points == 10
    assert ledger.available() == 40


def test_refunds_never_reverse_more_than_the_order_earned() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 5_000)
    ledger.earn("o-2", 5_000)
    ledger.refund("o-1", "r-1", 4_000)
    ledger.refund("o-1", "r-2", 4_000)
    third = ledger.refund("o-1", "r-3", 4_000)
    assert third.entries == ()
    assert ledger.orders["o-1"].reversed_points == 50
    assert ledger.available() == 50


def test_refund_amount_must_be_positive() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 5_000)
    with pytest.raises(InvalidRefund):
        ledger.refund("o-1", "r-1", 0)


def test_refund_of_an_order_that_earned_nothing_posts_nothing() -> None:
    ledger = Ledger()
    gift_cards = Purchase("o-1", 5_000, (PurchaseLine("gift_card", 1, 5_000),))
    ledger.post(earn(ledger.account, gift_cards, RULES, Decimal(1), new_id(), T0))
    posting = ledger.refund("o-1", "r-1", 5_000)
    assert posting.entries == ()
    assert posting.order is not None
    assert posting.order.refund_ids == {"r-1"}


def test_refund_takes_the_orders_overdue_points_before_others() -> None:
    ledger = Ledger()
    own = ledger.earn("o-1", 5_000, now=T0).lots[0]
    ledger.earn("o-2", 3_000, now=T0 + days(300))
    posting = ledger.refund("o-1", "r-1", 5_000, now=T0 + days(366))
    assert [(a.lot_id, a.points) for a in posting.entries[0].allocations] == [(own.lot_id, -50)]
    assert ledger.available(T0 + days(366)) == 30


def test_refund_never_takes_other_lots_expired_points() -> None:
    ledger = Ledger()
    own = ledger.earn("o-1", 5_000, now=T0).lots[0]
    ledger.redeem(40, now=T0)
    short_lived = credit(
        ledger.account,
        15,
        Source("bonus", "flash"),
        new_id(),
        T0 + days(10),
        EarningRules(expiry_days=30),
    )
    overdue = ledger.post(short_lived).lots[0]
    ledger.bonus(20, now=T0 + days(20))
    # At day 50 the flash bonus is overdue but the expiry job has not run.
    posting = ledger.refund("o-1", "r-1", 5_000, now=T0 + days(50))
    (entry,) = posting.entries
    taken_from = {a.lot_id for a in entry.allocations}
    assert own.lot_id in taken_from
    assert overdue.lot_id not in taken_from
    assert (entry.points, entry.debt_change) == (-50, 20)
    ledger.assert_reconciles()


def test_negative_adjustment_never_takes_expired_points() -> None:
    ledger = Ledger()
    overdue = ledger.bonus(30, now=T0).lots[0]
    ledger.bonus(10, now=T0 + days(100))
    posting = ledger.adjust(-25, now=T0 + days(365))
    (entry,) = posting.entries
    assert overdue.lot_id not in {a.lot_id for a in entry.allocations}
    assert (entry.points, entry.debt_change) == (-25, 15)


def test_refund_waives_points_the_order_already_lost_to_expiry() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 5_000, now=T0)
    ledger.redeem(20, now=T0)
    ledger.expire(T0 + days(365))  # 30 of o-1's 50 expired unspent
    ledger.earn("o-2", 8_000, now=T0 + days(366))
    posting = ledger.refund("o-1", "r-1", 5_000, now=T0 + days(367))
    (entry,) = posting.entries
    assert (entry.points, entry.waived, entry.debt_change) == (-20, 30, 0)
    assert ledger.orders["o-1"].reversed_points == 50
    assert ledger.available(T0 + days(367)) == 60
    ledger.assert_reconciles()


# ---------- adjustments ----------


def test_positive_adjustment_is_an_attributed_credit() -> None:
    ledger = Ledger()
    posting = ledger.adjust(25)
    (entry,) = posting.entries
    assert (entry.kind, entry.points, entry.actor, entry.reason) == (
        EntryKind.ADJUST,
        25,
        "ops:alice",
        "ticket 42",
    )
    assert posting.lots[0].source == Source("adjustment")
    assert ledger.available() == 25
    assert ledger.account.totals.adjusted == 25


def test_negative_adjustment_takes_soonest_expiring_then_records_debt() -> None:
    ledger = Ledger()
    first = ledger.earn("o-1", 1_000, now=T0).lots[0]
    second = ledger.earn("o-2", 2_000, now=T0 + days(1)).lots[0]
    posting = ledger.adjust(-45, now=T0 + days(2))
    (entry,) = posting.entries
    assert [(a.lot_id, a.points) for a in entry.allocations] == [
        (first.lot_id, -10),
        (second.lot_id, -20),
    ]
    assert (entry.points, entry.debt_change) == (-45, 15)
    assert ledger.account.debt == 15
    assert ledger.account.totals.adjusted == -45
    ledger.assert_reconciles()


@pytest.mark.parametrize(("actor", "reason"), [("", "why"), ("ops:alice", "  ")])
def test_adjustment_needs_actor_and_reason(actor: str, reason: str) -> None:
    with pytest.raises(InvalidAdjustment):
        adjust(Account(), 5, actor=actor, reason=reason, lot_id=new_id(), now=T0, rules=RULES)


def test_zero_adjustment_is_refused() -> None:
    with pytest.raises(InvalidPoints):
        adjust(Account(), 0, actor="ops", reason="why", lot_id=new_id(), now=T0, rules=RULES)


# ---------- balance and reconciliation ----------


def test_balance_reports_lifetime_totals_net_of_reversals() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 5_000)
    ledger.earn("o-2", 3_000)
    ledger.redeem(20)
    ledger.refund("o-2", "r-1", 3_000)
    summary = balance(ledger.account, T0)
    assert (summary.lifetime_earned, summary.lifetime_redeemed) == (50, 20)
    assert summary.available == 30


def test_reconcile_reports_a_tampered_lot() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 5_000)
    lot = ledger.account.lots[0]
    tampered = (type(lot)(**{**lot.__dict__, "remaining": 70}),)
    violations = reconcile(ledger.entries, tampered, 0)
    assert {v.rule for v in violations} == {"balance", "lot"}
    assert any("outside [0, 50]" in v.detail for v in violations)


def test_reconcile_reports_debt_and_entry_mismatches() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 5_000)
    bad = LedgerEntry(EntryKind.ADJUST, -5, T0)
    violations = reconcile([*ledger.entries, bad], ledger.account.lots, 3)
    rules = [v.rule for v in violations]
    assert rules.count("debt") == 1
    assert "entry" in rules
    assert "balance" in rules


def test_reconcile_reports_allocations_to_unknown_lots() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 5_000)
    violations = reconcile(ledger.entries, (), 0)
    assert any("unknown lot" in v.detail for v in violations)


# ---------- accounts with lots left in storage (the consumer's batches) ----------


def test_a_credit_keeps_the_unloaded_lots_and_counts_them_in_the_balance() -> None:
    stored = UnloadedLots(points=400, until=T0 + days(1))
    account = Account(debt=30, unloaded=stored)
    posting = earn(account, purchase("o-1", 5_000), RULES, Decimal(1), new_id(), T0)
    assert posting.account.unloaded == stored
    # 50 earned, 30 of them repay the debt: 20 in the new lot + 400 in storage.
    assert total_balance(posting.account, T0) == 420
    assert total_balance(posting.account, T0 + days(1)) == 420


def _split_by_expiry(account: Account, until: datetime) -> tuple[list[Lot], int]:
    live = [lot for lot in account.lots if lot.remaining > 0]
    loaded = [lot for lot in live if lot.expires_at <= until]
    return loaded, sum(lot.remaining for lot in live if lot.expires_at > until)


def test_the_lots_left_in_storage_are_told_by_the_totals() -> None:
    ledger = Ledger()
    ledger.earn("o-old", 10_000, T0 - days(300))
    ledger.earn("o-1", 8_000)
    ledger.expire(T0 + days(70))
    ledger.redeem(80, T0 + days(71))
    ledger.earn("o-2", 6_000, T0 + days(72))
    ledger.earn("o-3", 9_000, T0 + days(100))
    ledger.refund("o-1", "r-1", 8_000, T0 + days(101))  # taken from o-2's and o-3's lots
    ledger.adjust(25, T0 + days(102))
    account = ledger.account
    assert all(astuple(account.totals))
    assert [lot.remaining for lot in account.lots if lot.remaining] == [70, 25]
    for until in (T0, T0 + days(466), T0 + days(500)):  # none, one, both loaded
        loaded, rest = _split_by_expiry(account, until)
        unloaded = UnloadedLots.rest_of(account.totals, account.debt, loaded, until)
        assert unloaded == UnloadedLots(rest, until)


def test_the_totals_count_debt_when_telling_the_lots_left_in_storage() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 8_000)
    ledger.redeem(80)
    ledger.refund("o-1", "r-1", 8_000)
    assert ledger.account.debt == 80
    assert UnloadedLots.rest_of(ledger.account.totals, 80, (), T0) == UnloadedLots(0, T0)


def test_loaded_lots_holding_more_than_the_totals_allow_are_refused() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 8_000)
    lots = ledger.account.lots
    with pytest.raises(ValueError, match="more than the account's totals allow"):
        UnloadedLots.rest_of(ledger.account.totals, 0, (*lots, *lots), T0)


def test_a_balance_counts_released_lots_left_in_storage_beyond_the_horizon_as_available() -> None:
    ledger = Ledger()
    ledger.earn("o-1", 8_000, T0 - days(350))  # expires within 30 days of T0
    ledger.earn("o-2", 6_000, T0 - days(200))
    ledger.earn("o-3", 9_000, T0 - days(100))
    account = ledger.account
    horizon = T0 + days(30)
    loaded = [lot for lot in account.lots if lot.expires_at <= horizon]
    stored = UnloadedLots.rest_of(account.totals, 0, loaded, horizon, released=True)
    condensed = Account(lots=tuple(loaded), totals=account.totals, unloaded=stored)
    assert stored.points == 150
    assert balance(condensed, T0) == balance(account, T0)


@pytest.mark.parametrize(
    ("released", "until"),
    [(False, T0 + days(30)), (True, T0 + days(29))],
    ids=["maybe pending", "expiring soon"],
)
def test_a_balance_refuses_lots_in_storage_it_could_not_classify(
    released: bool, until: datetime
) -> None:
    account = Account(unloaded=UnloadedLots(points=400, until=until, released=released))
    with pytest.raises(RuntimeError, match="every live lot"):
        balance(account, T0, 30)


def test_the_balance_after_the_unloaded_horizon_is_refused() -> None:
    account = Account(unloaded=UnloadedLots(points=400, until=T0))
    with pytest.raises(ValueError, match="lots left in storage"):
        total_balance(account, T0 + timedelta(microseconds=1))


def test_loaded_lots_expiring_before_the_horizon_count_only_until_they_expire() -> None:
    ledger = Ledger()
    ledger.earn("o-old", 10_000, T0 - days(365) + timedelta(hours=1))
    account = Account(
        lots=ledger.account.lots,
        totals=ledger.account.totals,
        unloaded=UnloadedLots(points=7, until=T0 + timedelta(hours=2)),
    )
    assert total_balance(account, T0) == 107
    assert total_balance(account, T0 + timedelta(hours=2)) == 7


@pytest.mark.parametrize(
    "operation",
    [
        lambda account: redeem(account, 1, T0),
        lambda account: reverse_for_refund(
            account, OrderEarning("o-1", new_id(), 10, 1_000), "r-1", 500, T0
        ),
        lambda account: adjust(
            account, -5, actor="ops", reason="fix", lot_id=new_id(), now=T0, rules=RULES
        ),
        lambda account: expire(account, T0),
        lambda account: release(account, T0),
        lambda account: expiring_reminders(account, T0, 30),
        lambda account: balance(account, T0),
    ],
    ids=["redeem", "refund", "debit", "expire", "release", "reminders", "balance"],
)
def test_operations_on_lots_refuse_an_account_with_lots_in_storage(operation: Any) -> None:
    account = Account(unloaded=UnloadedLots(points=400, until=T0))
    with pytest.raises(RuntimeError, match="every live lot"):
        operation(account)
