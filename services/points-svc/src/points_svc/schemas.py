"""Request and response bodies of the points REST API (OpenAPI at /docs)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

CauseType = Literal["order", "refund", "redemption", "adjustment", "expiry", "bonus", "referral"]


# Largest number of points one request may move: far beyond any real balance, and small
# enough that balances summed from such amounts stay inside PostgreSQL's bigint.
MAX_POINTS = 10**12


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _printable(value: str, *, allowed: str = "") -> str:
    """Text stored as given: control characters (NUL, which PostgreSQL cannot store, and
    the like) are refused with a 422 naming the field instead of failing the insert."""
    if any(not character.isprintable() and character not in allowed for character in value):
        raise ValueError("must not contain control characters")
    return value


class RedemptionRequest(_Request):
    points: Annotated[int, Field(gt=0, le=MAX_POINTS, description="points to spend")]
    reference: Annotated[
        str | None,
        Field(min_length=1, max_length=200, description="caller's reference, e.g. a reward id"),
    ] = None

    @field_validator("reference")
    @classmethod
    def _reference_printable(cls, reference: str | None) -> str | None:
        return None if reference is None else _printable(reference)


class AdjustmentRequest(_Request):
    points: Annotated[
        int, Field(ge=-MAX_POINTS, le=MAX_POINTS, description="signed correction; never zero")
    ]
    reason: Annotated[str, Field(min_length=1, max_length=500)]

    @field_validator("points")
    @classmethod
    def _not_zero(cls, points: int) -> int:
        if points == 0:
            raise ValueError("an adjustment must not be zero")
        return points

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("a reason is required")
        return _printable(reason.strip(), allowed="\n\r\t")


class RedemptionView(BaseModel):
    redemption_id: UUID
    points: int
    reference: str | None
    balance_after: int


class AdjustmentView(BaseModel):
    points: int
    actor: str
    reason: str
    lot_id: UUID | None = Field(description="the new lot of a positive adjustment")
    debt_change: int
    balance_after: int


class ExpiringView(BaseModel):
    expires_on: date
    points: int


class BalanceView(BaseModel):
    member_id: UUID
    available: int = Field(description="spendable now: not pending, not expired")
    pending: int = Field(description="earned, waiting for the pending period to end")
    debt: int = Field(description="points owed after refunds of spent points; credits repay it")
    total: int = Field(description="available + pending - debt")
    expiring_soon: list[ExpiringView]
    lifetime_earned: int = Field(
        description="credited by orders, bonuses and referrals, net of refunds"
    )
    lifetime_redeemed: int
    as_of: datetime


class CauseView(BaseModel):
    type: CauseType
    order_id: str | None = None
    refund_id: str | None = None
    redemption_id: str | None = None
    lot_id: str | None = None
    award_id: str | None = None
    campaign_id: UUID | None = None
    actor: str | None = None
    reason: str | None = None


class HistoryEntryView(BaseModel):
    entry_id: int
    kind: str
    points: int = Field(description="signed change of the balance")
    debt_change: int = Field(description="+ debt recorded, - debt repaid")
    waived: int = Field(description="refunded points that had already expired (not taken again)")
    cause: CauseView
    created_at: datetime = Field(description="business time of the change")


class HistoryPage(BaseModel):
    items: list[HistoryEntryView]
    next_cursor: str | None


class ViolationView(BaseModel):
    member_id: UUID
    rule: str
    detail: str


class ReconciliationView(BaseModel):
    accounts_with_violations: int
    violations: list[ViolationView]
