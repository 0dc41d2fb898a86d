"""Request and response bodies of the REST API (the domain models are reused where they fit)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tier_svc.domain import QualifyingMetric, TierCode, TierDefinition, printable


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemberTierView(BaseModel):
    """A member's tier, its benefits, and progress towards the next one."""

    member_id: UUID
    tier: str
    name: str
    multiplier: Decimal
    perks: list[str]
    reached_at: datetime
    metric: QualifyingMetric
    qualifying_value: int = Field(description="rolling value in metric units (minor units)")
    protected_until: datetime = Field(description="no downgrade before this instant")
    next_tier: str | None
    amount_needed: int | None = Field(description="metric units still needed for next_tier")
    needed_by: datetime | None = Field(description="amount_needed holds if reached before this")
    within_days: int | None
    progress_text: str
    downgrade_to: str | None = Field(description="tier a downgrade evaluated now would give")
    amount_to_keep: int = Field(description="metric units still needed to keep the tier")


class LadderRequest(_Body):
    """A whole ladder (PUT /v1/tiers); the domain's Ladder validates the rules between tiers."""

    metric: QualifyingMetric = QualifyingMetric.SPEND
    window_days: Annotated[int, Field(ge=1, le=3660)] = 365
    protection_days: Annotated[int, Field(ge=0, le=3660)] = 365
    minor_digits: Annotated[int, Field(ge=0, le=4)] = 2
    revoke_on_refund: bool = True
    tiers: Annotated[list[TierDefinition], Field(min_length=1)]


class LadderView(BaseModel):
    version: int = Field(description="0 is the built-in default, before ops stored a ladder")
    metric: QualifyingMetric
    window_days: int
    protection_days: int
    minor_digits: int
    revoke_on_refund: bool
    tiers: list[TierDefinition]


class TierPatch(_Body):
    """Benefits and threshold of one tier; absent fields keep their value."""

    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    multiplier: Annotated[Decimal, Field(gt=0, max_digits=6, decimal_places=4)] | None = None
    perks: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = None
    threshold: Annotated[int, Field(ge=0)] | None = None

    @field_validator("name")
    @classmethod
    def _name_printable(cls, name: str | None) -> str | None:
        return None if name is None else printable(name)

    @field_validator("perks")
    @classmethod
    def _perks_printable(cls, perks: list[str] | None) -> list[str] | None:
        return None if perks is None else [printable(perk) for perk in perks]


class TierCount(BaseModel):
    code: TierCode
    name: str
    members: int


class DistributionView(BaseModel):
    total: int
    tiers: list[TierCount]
