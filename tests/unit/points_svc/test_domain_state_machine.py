"""Random sequences of ledger operations keep every invariant of DESIGN §4 and ADR 0002."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)
from points_svc.domain import (
    Account,
    EarningRules,
    EntryKind,
    InsufficientPoints,
    LedgerEntry,
    OrderEarning,
    Posting,
    Purchase,
    PurchaseLine,
    Source,
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
)

START = datetime(2026, 1, 1, tzinfo=UTC)
MULTIPLIERS = [Decimal(1), Decimal("1.25"), Decimal("1.5"), Decimal(2)]


class LedgerMachine(RuleBasedStateMachine):
    """Drives one account through earn / redeem / refund / adjust / jobs / time."""

    order_ids = Bundle("order_ids")

    def __init__(self) -> None:
        super().__init__()
        self.earning_rules = EarningRules()
        self.account = Account()
        self.entries: list[LedgerEntry] = []
        self.orders: dict[str, OrderEarning] = {}
        self.now = START
        self.next_id = 0
        self.reminded: set[UUID] = set()
        self.released: set[UUID] = set()

    # ---------- plumbing ----------

    def new_id(self) -> UUID:
        self.next_id += 1
        return UUID(int=self.next_id)

    def post(self, posting: Posting) -> Posting:
        self.account = posting.account
        self.entries.extend(posting.entries)
        if posting.order is not None:
            self.orders[posting.order.order_id] = posting.order
        return posting

    def spendable(self) -> int:
        """Available points computed from the lots directly, independently of `balance`."""
        return sum(
            lot.remaining
            for lot in self.account.lots
            if lot.available_at <= self.now < lot.expires_at
        )

    def overdue(self) -> int:
        """Points on the books in lots already expired that the job has not written off."""
        return sum(lot.remaining for lot in self.account.lots if lot.expires_at <= self.now)

    # ---------- rules ----------

    @initialize(
        pending_days=st.sampled_from([0, 14]),
        expiry_days=st.sampled_from([30, 90, 365]),
    )
    def configure(self, pending_days: int, expiry_days: int) -> None:
        self.earning_rules = EarningRules(pending_days=pending_days, expiry_days=expiry_days)

    @rule(
        target=order_ids,
        spend=st.integers(0, 50_000),
        gift_card=st.integers(0, 20_000),
        discount=st.integers(0, 5_000),
        multiplier=st.sampled_from(MULTIPLIERS),
        bonus=st.integers(0, 20),
    )
    def earn(
        self, spend: int, gift_card: int, discount: int, multiplier: Decimal, bonus: int
    ) -> str:
        lines = (PurchaseLine("books", 1, spend), PurchaseLine("gift_card", 1, gift_card))
        total = max(spend + gift_card - discount, 0)
        order_id = f"o-{len(self.orders) + 1}"
        purchase = Purchase(order_id, total, lines)
        posting = self.post(
            earn(
                self.account,
                purchase,
                self.earning_rules,
                multiplier,
                self.new_id(),
                self.now,
                bonus,
            )
        )
        assert posting.order is not None
        assert posting.order.earned_points >= bonus
        return order_id

    @rule(points=st.integers(1, 300))
    def bonus(self, points: int) -> None:
        if self.account.debt:
            event("credit repaid debt")
        total_before = balance(self.account, self.now).total
        source = Source("bonus", "award")
        self.post(credit(self.account, points, source, self.new_id(), self.now, self.earning_rules))
        assert balance(self.account, self.now).total - total_before == points

    @rule(data=st.data())
    def redeem(self, data: st.DataObject) -> None:
        before = self.spendable()
        points = data.draw(st.integers(1, before + 50), label="points")
        if points > before:
            event("redeem refused")
            with pytest.raises(InsufficientPoints) as raised:
                redeem(self.account, points, self.now)
            assert raised.value.available == before
            return
        posting = self.post(redeem(self.account, points, self.now))
        assert posting.entries[0].points == -points
        assert self.spendable() == before - points

    @rule(order_id=order_ids, percent=st.integers(1, 120), repeat_id=st.booleans())
    def refund(self, order_id: str, percent: int, repeat_id: bool) -> None:
        order = self.orders[order_id]
        amount = max(order.total_minor * percent // 100, 1)
        refund_id = (
            sorted(order.refund_ids)[0]
            if repeat_id and order.refund_ids
            else f"r-{len(order.refund_ids) + 1}"
        )
        total_before = balance(self.account, self.now).total
        own = self.account.lot(order.lot_id) if order.lot_id else None
        posting = self.post(reverse_for_refund(self.account, order, refund_id, amount, self.now))
        if refund_id in order.refund_ids:
            assert posting.entries == ()
        assert posting.order is not None
        due = posting.order.reversed_points - order.reversed_points
        waived = sum(entry.waived for entry in posting.entries)
        # Only the order's own overdue points may absorb a reversal without reducing the
        # balance; other lots' overdue points are worthless and must not be used.
        absorbed = sum(
            -allocation.points
            for entry in posting.entries
            for allocation in entry.allocations
            if own is not None and allocation.lot_id == own.lot_id and own.is_expired(self.now)
        )
        total_after = balance(self.account, self.now).total
        assert total_before - total_after == due - waived - absorbed
        for entry in posting.entries:
            event("refund recorded debt" if entry.debt_change else "refund covered by lots")
            if entry.waived:
                event("refund waived expired points")

    @rule(magnitude=st.integers(1, 300), negative=st.booleans())
    def adjust(self, magnitude: int, negative: bool) -> None:
        points = -magnitude if negative else magnitude
        total_before = balance(self.account, self.now).total
        self.post(
            adjust(
                self.account,
                points,
                actor="ops",
                reason="test",
                lot_id=self.new_id(),
                now=self.now,
                rules=self.earning_rules,
            )
        )
        assert balance(self.account, self.now).total - total_before == points

    @rule()
    def run_expiry_job(self) -> None:
        overdue = self.overdue()
        posting = self.post(expire(self.account, self.now))
        assert -sum(entry.points for entry in posting.entries) == overdue
        assert all(entry.kind is EntryKind.EXPIRE for entry in posting.entries)
        assert self.overdue() == 0
        if posting.entries:
            event("lots expired")

    @rule()
    def run_release_job(self) -> None:
        posting, releases = release(self.account, self.now)
        self.post(posting)
        for lot in posting.lots:
            assert lot.lot_id not in self.released
            assert lot.available_at <= self.now
            self.released.add(lot.lot_id)
        assert all(item.points > 0 for item in releases)
        if releases:
            event("pending lot released")

    @rule(days_ahead=st.integers(0, 60))
    def run_reminder_job(self, days_ahead: int) -> None:
        posting, reminders = expiring_reminders(self.account, self.now, days_ahead)
        self.post(posting)
        if reminders:
            event("reminder sent")
        for lot in posting.lots:
            assert lot.lot_id not in self.reminded
            self.reminded.add(lot.lot_id)
        assert sum(item.points for item in reminders) == sum(lot.remaining for lot in posting.lots)

    @rule(
        pending_days=st.sampled_from([0, 3, 14]),
        expiry_days=st.sampled_from([1, 30, 90, 365]),
    )
    def change_rules(self, pending_days: int, expiry_days: int) -> None:
        # Configuration changes apply to new lots only, so lots of different lifetimes mix.
        self.earning_rules = EarningRules(pending_days=pending_days, expiry_days=expiry_days)

    @rule(hours=st.integers(0, 24 * 120))
    def advance_clock(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    # ---------- invariants ----------

    @invariant()
    def books_reconcile(self) -> None:
        assert reconcile(self.entries, self.account.lots, self.account.debt) == []

    @invariant()
    def balance_is_entries_minus_unexpired_write_offs(self) -> None:
        summary = balance(self.account, self.now)
        ledger = sum(entry.points for entry in self.entries)
        assert summary.total == ledger - self.overdue()
        books = sum(lot.remaining for lot in self.account.lots) - self.account.debt
        assert ledger == books

    @invariant()
    def available_never_counts_expired_or_pending(self) -> None:
        summary = balance(self.account, self.now)
        assert summary.available == self.spendable()
        pending = sum(
            lot.remaining
            for lot in self.account.lots
            if lot.available_at > self.now and lot.expires_at > self.now
        )
        assert summary.pending == pending

    @invariant()
    def lots_and_debt_are_never_negative(self) -> None:
        assert self.account.debt >= 0
        for lot in self.account.lots:
            assert 0 <= lot.remaining <= lot.original

    @invariant()
    def debt_only_when_no_live_points(self) -> None:
        if self.account.debt > 0:
            assert balance(self.account, self.now).available == 0
            assert balance(self.account, self.now).pending == 0

    @invariant()
    def reversal_never_exceeds_what_the_order_earned(self) -> None:
        for order in self.orders.values():
            assert 0 <= order.reversed_points <= order.earned_points
            assert order.refunded_minor <= order.total_minor

    @invariant()
    def waivers_never_exceed_what_the_orders_lot_lost_to_expiry(self) -> None:
        expired: dict[UUID, int] = {}
        for entry in self.entries:
            if entry.kind is EntryKind.EXPIRE:
                lot_id = entry.allocations[0].lot_id
                expired[lot_id] = expired.get(lot_id, 0) - entry.points
        for order in self.orders.values():
            waived = sum(
                entry.waived
                for entry in self.entries
                if entry.kind is EntryKind.REVERSE and entry.order_id == order.order_id
            )
            lost = expired.get(order.lot_id, 0) if order.lot_id else 0
            assert waived <= lost

    @invariant()
    def lifetime_totals_explain_the_ledger(self) -> None:
        totals = self.account.totals
        net = totals.earned - totals.reversed - totals.redeemed - totals.expired
        assert net + totals.adjusted == sum(entry.points for entry in self.entries)


LedgerMachine.TestCase.settings = settings(
    max_examples=500,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_ledger_state_machine = LedgerMachine.TestCase
