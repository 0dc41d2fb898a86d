"""What the platform must end up with, computed independently from what the chaos run
published and what the services confirmed, with none of the services' own code.

The rules mirrored here are DESIGN.md §4's: 1 point per currency unit of eligible spend
(floor), refunds reverse round-half-up(earned × refunded / total) cumulatively per order,
redemptions confirmed with 201 spend points; tiers go up at once on rolling net spend
(the chaos ladder does not revoke on refund, so a member keeps the highest tier reached).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from uuid import UUID

MINOR_PER_UNIT = 100

# The ladder the chaos run installs in tier-svc: every multiplier is 1, because a tier's
# multiplier applies to purchases processed after tier-svc's tier.changed reached
# points-svc, an order that depends on timing (DESIGN.md §4) and so on the faults.
CHAOS_LADDER = (("basic", 0), ("silver", 20_000), ("gold", 60_000), ("diamond", 150_000))


def tier_for(value_minor: int) -> str:
    return [code for code, threshold in CHAOS_LADDER if value_minor >= threshold][-1]


def _rank(code: str) -> int:
    return [c for c, _ in CHAOS_LADDER].index(code)


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


@dataclass
class Order:
    member_id: UUID
    total_minor: int
    refunded_minor: int = 0

    @property
    def earned(self) -> int:
        return self.total_minor // MINOR_PER_UNIT

    @property
    def reversed(self) -> int:
        refunded = min(self.refunded_minor, self.total_minor)
        return min(_round_half_up(Fraction(self.earned * refunded, self.total_minor)), self.earned)


@dataclass
class Member:
    member_id: UUID
    net_spend_minor: int = 0
    tier: str = "basic"
    redeemed: int = 0


@dataclass
class Expected:
    """Updated only with outcomes that are certain: a publish the broker acknowledged,
    a redemption answered with 201."""

    members: dict[UUID, Member] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    refunds: int = 0

    def registered(self, member_id: UUID) -> None:
        self.members[member_id] = Member(member_id)

    def purchased(self, order_id: str, member_id: UUID, total_minor: int) -> None:
        self.orders[order_id] = Order(member_id, total_minor)
        member = self.members[member_id]
        member.net_spend_minor += total_minor
        if _rank(tier_for(member.net_spend_minor)) > _rank(member.tier):
            member.tier = tier_for(member.net_spend_minor)

    def refunded(self, order_id: str, amount_minor: int) -> None:
        order = self.orders[order_id]
        counted = min(amount_minor, order.total_minor - order.refunded_minor)
        order.refunded_minor += amount_minor
        self.members[order.member_id].net_spend_minor -= max(counted, 0)
        self.refunds += 1

    def redeemed(self, member_id: UUID, points: int) -> None:
        self.members[member_id].redeemed += points

    def balance(self, member_id: UUID) -> int:
        """available + pending − debt: what was earned, less reversals and redemptions."""
        orders = [o for o in self.orders.values() if o.member_id == member_id]
        earned = sum(o.earned for o in orders)
        reversed_points = sum(o.reversed for o in orders)
        return earned - reversed_points - self.members[member_id].redeemed

    def tier_counts(self) -> Counter[str]:
        return Counter(member.tier for member in self.members.values())

    @property
    def gross_revenue_minor(self) -> int:
        return sum(order.total_minor for order in self.orders.values())

    @property
    def net_orders(self) -> int:
        """Orders that still count: a wholly refunded order is no order (DESIGN.md §4)."""
        return sum(1 for order in self.orders.values() if order.refunded_minor < order.total_minor)

    @property
    def net_revenue_minor(self) -> int:
        return self.gross_revenue_minor - self.refunded_minor

    @property
    def refunded_minor(self) -> int:
        return sum(min(o.refunded_minor, o.total_minor) for o in self.orders.values())

    @property
    def points_redeemed(self) -> int:
        return sum(member.redeemed for member in self.members.values())
