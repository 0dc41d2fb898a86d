"""Values of the points ledger: configuration, lots, entries, accounts, postings and errors.

Everything here is immutable and free of I/O; the operations live in `domain.py`.
Points are ints, money is int minor units, time is timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal
from uuid import UUID

SourceKind = Literal["order", "bonus", "adjustment", "referral"]


# ---------- configuration ----------


@dataclass(frozen=True)
class EarningRules:
    """How purchases turn into points and how long points live (configuration as data)."""

    rate_per_unit: Decimal = Decimal(1)
    minor_units_per_unit: int = 100
    excluded_categories: frozenset[str] = frozenset({"gift_card"})
    pending_days: int = 0
    expiry_days: int = 365
    expiring_reminder_days: int = 30

    def __post_init__(self) -> None:
        if self.rate_per_unit < 0:
            raise ValueError("rate_per_unit must not be negative")
        if self.minor_units_per_unit <= 0:
            raise ValueError("minor_units_per_unit must be positive")
        if self.pending_days < 0:
            raise ValueError("pending_days must not be negative")
        # An expiry of zero days would make a lot expire the instant it becomes available.
        if self.expiry_days < 1:
            raise ValueError("expiry_days must be at least 1")
        if self.expiring_reminder_days < 0:
            raise ValueError("expiring_reminder_days must not be negative")

    @property
    def pending_period(self) -> timedelta:
        return timedelta(days=self.pending_days)

    @property
    def lifetime(self) -> timedelta:
        return timedelta(days=self.expiry_days)


# ---------- purchases ----------


@dataclass(frozen=True)
class PurchaseLine:
    category: str
    quantity: int
    unit_price_minor: int

    @property
    def amount_minor(self) -> int:
        return self.quantity * self.unit_price_minor


@dataclass(frozen=True)
class Purchase:
    """The part of an `order.purchased` event that earning needs."""

    order_id: str
    total_minor: int
    lines: tuple[PurchaseLine, ...]


@dataclass(frozen=True)
class OrderEarning:
    """What an order earned and how much of it refunds have taken back so far.

    `refunded_minor` and `reversed_points` are cumulative, so a series of partial refunds
    reverses exactly what one refund of the same total would.
    """

    order_id: str
    lot_id: UUID | None
    earned_points: int
    total_minor: int
    refunded_minor: int = 0
    reversed_points: int = 0
    refund_ids: frozenset[str] = frozenset()


# ---------- lots and ledger entries ----------


@dataclass(frozen=True)
class Source:
    """Why a lot exists: an order, a campaign award, an ops adjustment, a referral."""

    kind: SourceKind
    reference: str | None = None


@dataclass(frozen=True)
class Lot:
    """One credit, spent and expired independently of the others.

    `forfeited` counts points of this lot written off by expiry that a refund of the
    source order has not yet counted as taken back (see ADR 0002, rule R16).
    """

    lot_id: UUID
    source: Source
    original: int
    remaining: int
    available_at: datetime
    expires_at: datetime
    released: bool = True
    reminded: bool = False
    forfeited: int = 0

    def is_pending(self, now: datetime) -> bool:
        return self.available_at > now

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at <= now

    def is_live(self, now: datetime) -> bool:
        """Holds points that still count: not expired (pending or available)."""
        return self.remaining > 0 and not self.is_expired(now)

    def is_spendable(self, now: datetime) -> bool:
        return self.is_live(now) and not self.is_pending(now)


class EntryKind(StrEnum):
    EARN = "earn"
    BONUS = "bonus"
    REFERRAL = "referral"
    ADJUST = "adjust"
    REDEEM = "redeem"
    REVERSE = "reverse"
    EXPIRE = "expire"


@dataclass(frozen=True)
class Allocation:
    """The signed change one entry made to one lot's remaining points."""

    lot_id: UUID
    points: int


@dataclass(frozen=True)
class LedgerEntry:
    """An immutable ledger row. `points` is the signed change of the balance.

    Always: points == sum(allocation points) - debt_change.
    """

    kind: EntryKind
    points: int
    occurred_at: datetime
    allocations: tuple[Allocation, ...] = ()
    debt_change: int = 0
    order_id: str | None = None
    reference: str | None = None
    actor: str | None = None
    reason: str | None = None
    waived: int = 0


# ---------- account ----------


@dataclass(frozen=True)
class LifetimeTotals:
    """Running totals; earned - reversed - redeemed - expired + adjusted == lots - debt."""

    earned: int = 0
    reversed: int = 0
    redeemed: int = 0
    expired: int = 0
    adjusted: int = 0

    def lots_remaining(self, debt: int) -> int:
        """What the account's lots hold in all (the identity above, solved for lots)."""
        return self.earned - self.reversed - self.redeemed - self.expired + self.adjusted + debt


@dataclass(frozen=True)
class UnloadedLots:
    """Live lots an account left in storage: `points` remaining in all, each expiring
    after `until`. Enough to credit the account and to tell its balance at any instant up
    to `until`, without loading a frequent buyer's thousands of lots."""

    points: int
    until: datetime
    # None of them is pending (the balance read leaves only released lots in storage).
    released: bool = False

    @classmethod
    def rest_of(
        cls,
        totals: LifetimeTotals,
        debt: int,
        loaded: Iterable[Lot],
        until: datetime,
        *,
        released: bool = False,
    ) -> UnloadedLots:
        """The lots not in `loaded`, told by the running totals: no need to read them.

        The totals and the lots are written in one transaction, so the identity holds;
        `load_unloaded_lots` checks it again whenever the lots are read after all.
        """
        points = totals.lots_remaining(debt) - sum(lot.remaining for lot in loaded)
        if points < 0:
            raise ValueError(
                f"the loaded lots hold more than the account's totals allow ({-points} over)"
            )
        return cls(points, until, released)


@dataclass(frozen=True)
class Account:
    """A member's points state: every lot it knows of, outstanding debt, running totals.

    With `unloaded`, `lots` holds only some of the live lots (see `UnloadedLots`), and
    only credits and `total_balance` accept the account.
    """

    lots: tuple[Lot, ...] = ()
    debt: int = 0
    totals: LifetimeTotals = field(default_factory=LifetimeTotals)
    unloaded: UnloadedLots | None = None

    def lot(self, lot_id: UUID) -> Lot | None:
        return next((lot for lot in self.lots if lot.lot_id == lot_id), None)

    def require_all_lots(self) -> None:
        """Refuse to take from, scan or expire lots while some are left in storage."""
        if self.unloaded is not None:
            raise RuntimeError("this operation needs every live lot of the account loaded")


@dataclass(frozen=True)
class Posting:
    """What one operation changed; a repository persists all of it in one transaction.

    `lots` holds the new state of every lot created or changed; `order` is set by
    `earn` and `reverse_for_refund`.
    """

    account: Account
    entries: tuple[LedgerEntry, ...] = ()
    lots: tuple[Lot, ...] = ()
    order: OrderEarning | None = None


# ---------- read models ----------


@dataclass(frozen=True)
class ExpiringPoints:
    expires_on: date
    points: int


@dataclass(frozen=True)
class Release:
    """Pending points of a lot became spendable (`points.released`)."""

    lot_id: UUID
    points: int
    released_at: datetime


@dataclass(frozen=True)
class Balance:
    """A member's balance at one instant. Expired points never count, job or no job."""

    available: int
    pending: int
    debt: int
    expiring_soon: tuple[ExpiringPoints, ...]
    lifetime_earned: int
    lifetime_redeemed: int

    @property
    def total(self) -> int:
        """Available plus pending minus debt; negative only while debt is outstanding."""
        return self.available + self.pending - self.debt


@dataclass(frozen=True)
class Violation:
    """A broken ledger invariant found by `reconcile`."""

    rule: str
    detail: str


# ---------- errors ----------


class PointsError(ValueError):
    """A request the ledger refuses; `str(error)` tells the user what to change."""


class InsufficientPoints(PointsError):
    def __init__(self, available: int, requested: int) -> None:
        super().__init__(
            f"insufficient points: {requested} requested, {available} available to spend"
        )
        self.available = available
        self.requested = requested


class InvalidPoints(PointsError):
    def __init__(self, points: int, requirement: str) -> None:
        super().__init__(f"points must be {requirement}, got {points}")
        self.points = points


class InvalidAdjustment(PointsError):
    """An adjustment without an actor or a reason: corrections must be attributable."""


class InvalidRefund(PointsError):
    """A refund that cannot apply to the order it names."""


class DuplicateLot(PointsError):
    """A credit reused the id of a lot the account already has: it was already applied."""

    def __init__(self, lot_id: UUID) -> None:
        super().__init__(f"lot {lot_id} already exists; the credit was already applied")
        self.lot_id = lot_id
