"""Request and response bodies of the campaign-svc REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from campaign_svc.domain import Discount
from campaign_svc.repository import CampaignStats, StoredCampaign, StoredCoupon

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
MinorUnits = Annotated[int, Field(ge=0, le=10**15)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------- campaigns ----------


class CampaignPatch(_Request):
    """Fields present change; starts_at / ends_at may be null to open that end."""

    status: Literal["active", "paused", "ended"] | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class BudgetView(BaseModel):
    unit: str
    limit: int
    spent: int


class StatsView(BaseModel):
    exposures: dict[str, int]
    coupons: dict[str, int]
    budget: BudgetView | None


class CampaignView(BaseModel):
    campaign_id: UUID
    name: str
    status: str
    definition: dict[str, Any]
    budget_spent: int
    created_at: datetime
    updated_at: datetime
    stats: StatsView | None = None

    @classmethod
    def of(cls, stored: StoredCampaign, stats: CampaignStats | None = None) -> CampaignView:
        budget = stored.definition.controls.budget
        return cls(
            campaign_id=stored.campaign_id,
            name=stored.definition.name,
            status=stored.status,
            definition=stored.definition.model_dump(mode="json"),
            budget_spent=stored.budget_spent,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            stats=None
            if stats is None
            else StatsView(
                exposures=stats.exposures,
                coupons=stats.coupons,
                budget=BudgetView(unit=budget.unit, limit=budget.limit, spent=stored.budget_spent)
                if budget
                else None,
            ),
        )


class CampaignPage(BaseModel):
    items: list[CampaignView]
    next_cursor: str | None


# ---------- coupons ----------


class CouponView(BaseModel):
    coupon_id: UUID
    campaign_id: UUID
    member_id: UUID
    code: str
    kind: str
    value: int
    max_discount_minor: int | None
    min_spend_minor: int
    currency: str | None
    status: str
    valid_from: datetime
    valid_until: datetime
    issued_at: datetime
    redeemed_at: datetime | None
    order_id: str | None
    discount_minor: int | None

    @classmethod
    def of(cls, stored: StoredCoupon, now: datetime) -> CouponView:
        coupon, terms = stored.coupon, stored.coupon.terms
        expired = coupon.status == "issued" and now >= coupon.valid_until
        return cls(
            coupon_id=coupon.coupon_id,
            campaign_id=coupon.campaign_id,
            member_id=coupon.member_id,
            code=coupon.code,
            kind=terms.kind,
            value=terms.value,
            max_discount_minor=terms.max_discount_minor,
            min_spend_minor=terms.min_spend_minor,
            currency=terms.currency,
            status="expired" if expired else coupon.status,
            valid_from=coupon.valid_from,
            valid_until=coupon.valid_until,
            issued_at=stored.issued_at,
            redeemed_at=stored.redeemed_at,
            order_id=stored.order_id,
            discount_minor=stored.discount_minor,
        )


class CouponPage(BaseModel):
    items: list[CouponView]
    next_cursor: str | None


class BasketRequest(_Request):
    code: Annotated[str, Field(min_length=1, max_length=40)]
    member_id: UUID
    basket_total_minor: MinorUnits = Field(description="items total before discount")
    shipping_minor: MinorUnits = 0
    currency: Currency | None = None


class RedeemRequest(BasketRequest):
    order_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None

    @field_validator("order_id")
    @classmethod
    def _order_id_printable(cls, value: str | None) -> str | None:
        # Stored as given: NUL (PostgreSQL cannot store it) and the like are refused.
        if value is not None and any(not character.isprintable() for character in value):
            raise ValueError("must not contain control characters")
        return value


class DiscountView(BaseModel):
    items_minor: int
    shipping_minor: int
    total_minor: int

    @classmethod
    def of(cls, discount: Discount) -> DiscountView:
        return cls(
            items_minor=discount.items_minor,
            shipping_minor=discount.shipping_minor,
            total_minor=discount.total_minor,
        )


class ValidationResult(BaseModel):
    valid: bool
    reason: str | None = None
    coupon_id: UUID | None = None
    discount: DiscountView | None = None


class RedemptionView(BaseModel):
    coupon_id: UUID
    campaign_id: UUID
    member_id: UUID
    code: str
    order_id: str | None
    redeemed_at: datetime
    discount: DiscountView
