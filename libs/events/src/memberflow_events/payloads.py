"""Payload models of every v1 event type (DESIGN.md §2): the single source of the contract.

Money is integer minor units with an ISO 4217 currency; points are integers; decimals
travel as strings so no consumer sees a float rounding error.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from memberflow_events.envelope import EventPayload
from memberflow_events.topics import ANALYTICS, CAMPAIGNS, MEMBERS, ORDERS, POINTS, TIERS

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
MinorUnits = Annotated[int, Field(ge=0, description="amount in the currency's minor units")]
PositivePoints = Annotated[int, Field(gt=0)]
ExternalId = Annotated[str, Field(min_length=1, max_length=100)]
Channel = Literal["email", "sms", "push", "mail"]
Code = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,40}$")]
DecimalString = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=4)]


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------- orders (external producers) ----------


class OrderLine(_Value):
    sku: ExternalId
    category: Annotated[str, Field(min_length=1, max_length=100)]
    quantity: Annotated[int, Field(ge=1)]
    unit_price_minor: MinorUnits


class OrderPurchased(EventPayload):
    event_type = "order.purchased"
    topic = ORDERS
    description = "An order system saw a completed purchase (member or guest)."

    order_id: ExternalId
    member_id: UUID | None
    currency: Currency
    total_minor: MinorUnits
    lines: Annotated[list[OrderLine], Field(min_length=1)]
    channel: Annotated[str, Field(min_length=1, max_length=40)]
    store_id: ExternalId | None = None


class RefundLine(_Value):
    sku: ExternalId
    quantity: Annotated[int, Field(ge=1)]
    amount_minor: MinorUnits


class OrderRefunded(EventPayload):
    event_type = "order.refunded"
    topic = ORDERS
    description = "Part or all of an order was refunded."

    order_id: ExternalId
    refund_id: ExternalId
    amount_minor: Annotated[int, Field(gt=0)]
    currency: Currency | None = None
    lines: list[RefundLine] | None = None


# ---------- members ----------


class MemberRegistered(EventPayload):
    """Carries only what other services may project: no name, email or phone."""

    event_type = "member.registered"
    topic = MEMBERS
    description = "A member joined the programme."

    external_id: ExternalId | None = None
    birth_month: Annotated[int, Field(ge=1, le=12)] | None = None
    birth_day: Annotated[int, Field(ge=1, le=31)] | None = None
    time_zone: str = "UTC"
    consents: dict[Channel, bool] = Field(default_factory=dict)
    referred_by: UUID | None = None
    attributes: dict[str, str] = Field(default_factory=dict)


class MemberUpdated(EventPayload):
    event_type = "member.updated"
    topic = MEMBERS
    description = "Projectable member data changed; absent fields did not change."

    birth_month: Annotated[int, Field(ge=1, le=12)] | None = None
    birth_day: Annotated[int, Field(ge=1, le=31)] | None = None
    time_zone: str | None = None
    consents: dict[Channel, bool] | None = None
    attributes: dict[str, str] | None = None


class MemberErased(EventPayload):
    event_type = "member.erased"
    topic = MEMBERS
    description = "Personal data was erased (GDPR); every projection must forget it."


class MemberActivity(EventPayload):
    event_type = "member.activity"
    topic = MEMBERS
    description = "Engagement other than purchases: login, visit, review, share, ..."

    kind: Annotated[str, Field(pattern=r"^[a-z_]{2,32}$")]
    channel: Annotated[str, Field(max_length=40)] | None = None
    store_id: ExternalId | None = None


class MemberFeedback(EventPayload):
    event_type = "member.feedback"
    topic = MEMBERS
    description = "A Net Promoter Score answer."

    nps_score: Annotated[int, Field(ge=0, le=10)]
    comment: Annotated[str, Field(max_length=2000)] | None = None


# ---------- points ----------

PointsSource = Literal["order", "bonus", "adjustment", "referral"]


class PointsEarned(EventPayload):
    event_type = "points.earned"
    topic = POINTS
    description = "A credit: a new lot (pending until available_at), part of it may repay debt."

    lot_id: UUID
    points: PositivePoints
    source: PointsSource
    order_id: ExternalId | None = None
    campaign_id: UUID | None = None
    multiplier: DecimalString = Decimal(1)
    debt_repaid: Annotated[int, Field(ge=0)] = 0
    available_at: AwareDatetime
    expires_at: AwareDatetime
    balance_after: int | None = None


class PointsReleased(EventPayload):
    event_type = "points.released"
    topic = POINTS
    description = "Pending points became available."

    lot_id: UUID
    points: PositivePoints


class PointsRedeemed(EventPayload):
    event_type = "points.redeemed"
    topic = POINTS
    description = "Points were spent."

    redemption_id: UUID
    points: PositivePoints
    reference: Annotated[str, Field(max_length=200)] | None = None
    balance_after: int | None = None


class PointsReversed(EventPayload):
    event_type = "points.reversed"
    topic = POINTS
    description = "Points taken back for a refund; what lots could not cover became debt."

    order_id: ExternalId
    refund_id: ExternalId
    points: PositivePoints
    debt_points: Annotated[int, Field(ge=0)] = 0
    balance_after: int | None = None


class PointsExpired(EventPayload):
    event_type = "points.expired"
    topic = POINTS
    description = "The unspent rest of a lot expired."

    lot_id: UUID
    points: PositivePoints
    balance_after: int | None = None


class PointsAdjusted(EventPayload):
    event_type = "points.adjusted"
    topic = POINTS
    description = "An ops correction, with who made it and why."

    points: int
    actor: Annotated[str, Field(min_length=1, max_length=200)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    balance_after: int | None = None

    @model_validator(mode="after")
    def _not_zero(self) -> PointsAdjusted:
        if self.points == 0:
            raise ValueError("points: an adjustment must not be zero")
        return self


class PointsExpiring(EventPayload):
    event_type = "points.expiring"
    topic = POINTS
    description = "Reminder: points that will expire soon."

    points: PositivePoints
    expires_on: date


# ---------- tiers ----------


class TierChanged(EventPayload):
    event_type = "tier.changed"
    topic = TIERS
    description = "A member moved to another tier; carries the benefits consumers project."

    from_tier: Code | None
    to_tier: Code
    direction: Literal["upgrade", "downgrade", "initial"]
    reason: Annotated[str, Field(min_length=1, max_length=200)]
    qualifying_value: int
    multiplier: DecimalString = Decimal(1)
    protected_until: AwareDatetime | None = None


# ---------- campaigns ----------

CouponKind = Literal["percent", "amount", "free_shipping"]


class CouponIssued(EventPayload):
    event_type = "coupon.issued"
    topic = CAMPAIGNS
    description = "A coupon was issued to a member."

    coupon_id: UUID
    campaign_id: UUID
    code: Annotated[str, Field(min_length=8, max_length=40)]
    kind: CouponKind
    value: Annotated[int, Field(ge=0)]
    min_spend_minor: MinorUnits = 0
    valid_from: AwareDatetime
    valid_until: AwareDatetime


class CouponRedeemed(EventPayload):
    event_type = "coupon.redeemed"
    topic = CAMPAIGNS
    description = "A coupon was used on an order."

    coupon_id: UUID
    campaign_id: UUID
    order_id: ExternalId | None = None
    discount_minor: MinorUnits


class BonusAwarded(EventPayload):
    event_type = "bonus.awarded"
    topic = CAMPAIGNS
    description = "A campaign awarded bonus points; points-svc credits them."

    award_id: UUID
    campaign_id: UUID
    points: PositivePoints
    reason: Annotated[str, Field(min_length=1, max_length=200)]


class MessageRequested(EventPayload):
    event_type = "message.requested"
    topic = CAMPAIGNS
    description = "A campaign asks a messaging system to contact a member who consented."

    campaign_id: UUID
    channel: Channel
    template: Annotated[str, Field(min_length=1, max_length=100)]
    variables: dict[str, str] = Field(default_factory=dict)


class CampaignExposed(EventPayload):
    event_type = "campaign.exposed"
    topic = CAMPAIGNS
    description = "A member was assigned to a campaign's treatment or control group."

    campaign_id: UUID
    group: Literal["treatment", "control"]
    trigger: Annotated[str, Field(min_length=1, max_length=100)]


# ---------- analytics ----------


class MemberChurnRisk(EventPayload):
    event_type = "member.churn_risk"
    topic = ANALYTICS
    description = "A member entered a churn-risk episode (once per episode)."

    score: Annotated[float, Field(ge=0, le=1)]
    reason: Annotated[str, Field(min_length=1, max_length=200)]
    p_alive: Annotated[float, Field(ge=0, le=1)] | None = None


class MemberSegmentChanged(EventPayload):
    event_type = "member.segment_changed"
    topic = ANALYTICS
    description = "A member's RFM segment changed."

    rfm_segment: Annotated[str, Field(min_length=1, max_length=60)]
    previous_segment: str | None = None
    recency_score: Annotated[int, Field(ge=1, le=5)]
    frequency_score: Annotated[int, Field(ge=1, le=5)]
    monetary_score: Annotated[int, Field(ge=1, le=5)]
    scored_at: datetime | None = None


ALL_PAYLOADS: tuple[type[EventPayload], ...] = (
    OrderPurchased,
    OrderRefunded,
    MemberRegistered,
    MemberUpdated,
    MemberErased,
    MemberActivity,
    MemberFeedback,
    PointsEarned,
    PointsReleased,
    PointsRedeemed,
    PointsReversed,
    PointsExpired,
    PointsAdjusted,
    PointsExpiring,
    TierChanged,
    CouponIssued,
    CouponRedeemed,
    BonusAwarded,
    MessageRequested,
    CampaignExposed,
    MemberChurnRisk,
    MemberSegmentChanged,
)
