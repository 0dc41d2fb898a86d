"""Campaign definitions (trigger + audience + actions + controls) and the member projection.

Definitions are data that ops create over REST; validation refuses a campaign that could
never fire or never act, with a reason that names the field at fault. Rules chosen where
DESIGN.md is silent: docs/decisions/0004-campaign-rules.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from campaign_svc.domain_coupons import CouponTerms

Channel = Literal["email", "sms", "push", "mail"]
TierCode = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,40}$")]
TierDirection = Literal["upgrade", "downgrade", "initial"]
Label = Annotated[str, Field(min_length=1, max_length=100)]


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------- triggers ----------


class MemberRegisteredTrigger(_Value):
    """Welcome: fires on `member.registered`."""

    kind: Literal["member_registered"] = "member_registered"


class TierChangedTrigger(_Value):
    """Fires on `tier.changed` to `to_tier` in one of `directions` (upgrades by default)."""

    kind: Literal["tier_changed"] = "tier_changed"
    to_tier: TierCode
    directions: frozenset[TierDirection] = frozenset({"upgrade"})

    @field_validator("directions")
    @classmethod
    def _some_direction(cls, value: frozenset[TierDirection]) -> frozenset[TierDirection]:
        if not value:
            raise ValueError("an empty set of directions never fires")
        return value


class ChurnRiskTrigger(_Value):
    """Win-back: fires on `member.churn_risk` with score >= `min_score`."""

    kind: Literal["churn_risk"] = "churn_risk"
    min_score: Annotated[float, Field(ge=0, le=1)]


class PointsExpiringTrigger(_Value):
    """Reminder: fires on `points.expiring` for at least `min_points` points."""

    kind: Literal["points_expiring"] = "points_expiring"
    min_points: Annotated[int, Field(ge=1)] = 1


class NthPurchaseTrigger(_Value):
    """Fires on the member's `n`-th `order.purchased` (1 = first purchase)."""

    kind: Literal["nth_purchase"] = "nth_purchase"
    n: Annotated[int, Field(ge=1)]


class BirthdayTrigger(_Value):
    """Schedule: a member's birthday, today in the member's own time zone, once a year."""

    kind: Literal["birthday"] = "birthday"


class BlastTrigger(_Value):
    """Schedule: a one-off send to the audience at `send_at`."""

    kind: Literal["blast"] = "blast"
    send_at: AwareDatetime


Trigger = Annotated[
    MemberRegisteredTrigger
    | TierChangedTrigger
    | ChurnRiskTrigger
    | PointsExpiringTrigger
    | NthPurchaseTrigger
    | BirthdayTrigger
    | BlastTrigger,
    Field(discriminator="kind"),
]

SCHEDULED_TRIGGERS = frozenset({"birthday", "blast"})


# ---------- audience ----------


class Audience(_Value):
    """Who may receive the campaign; every given filter must hold (None = no filter)."""

    tiers: frozenset[TierCode] | None = None
    rfm_segments: frozenset[Label] | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    consents: frozenset[Channel] = frozenset()

    @field_validator("tiers", "rfm_segments")
    @classmethod
    def _not_empty(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        if value is not None and not value:
            raise ValueError("an empty list matches nobody; leave it out to match everyone")
        return value


# ---------- actions ----------


class CouponAction(_Value):
    """Issue a coupon valid for `valid_days` from issue, or until a fixed `valid_until`."""

    kind: Literal["coupon"] = "coupon"
    terms: CouponTerms
    valid_days: Annotated[int, Field(ge=1, le=3660)] | None = None
    valid_until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_validity(self) -> CouponAction:
        if (self.valid_days is None) == (self.valid_until is None):
            raise ValueError("valid_days: give exactly one of valid_days or valid_until")
        return self

    def expiry_for(self, issued_at: datetime) -> datetime:
        if self.valid_until is not None:
            return self.valid_until
        assert self.valid_days is not None  # guaranteed by _one_validity
        return issued_at + timedelta(days=self.valid_days)


class BonusPointsAction(_Value):
    """Award bonus points (`bonus.awarded`; points-svc credits them)."""

    kind: Literal["bonus_points"] = "bonus_points"
    points: Annotated[int, Field(ge=1, le=10_000_000)]
    reason: Annotated[str, Field(min_length=1, max_length=200)] = "campaign bonus"


class MessageAction(_Value):
    """Request a message (`message.requested`); sent only with consent for the channel."""

    kind: Literal["message"] = "message"
    channel: Channel
    template: Label
    variables: dict[str, str] = Field(default_factory=dict)


Action = Annotated[
    CouponAction | BonusPointsAction | MessageAction,
    Field(discriminator="kind"),
]


# ---------- controls ----------


class Budget(_Value):
    """A campaign-wide limit on coupons issued or bonus points awarded."""

    unit: Literal["coupons", "points"]
    limit: Annotated[int, Field(ge=1)]


class FrequencyCap(_Value):
    """At most `max_count` exposures per member in any `period_days` rolling days."""

    max_count: Annotated[int, Field(ge=1)]
    period_days: Annotated[int, Field(ge=1, le=3660)]


class Controls(_Value):
    """Active window [starts_at, ends_at), budget, frequency cap and control-group share."""

    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    budget: Budget | None = None
    frequency_cap: FrequencyCap | None = None
    control_share: Annotated[Decimal, Field(ge=0, le=Decimal("0.9"))] = Decimal(0)

    @model_validator(mode="after")
    def _window_not_empty(self) -> Controls:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at: the campaign ends before it starts")
        return self


# ---------- the campaign ----------


class CampaignDefinition(_Value):
    campaign_id: UUID
    name: Annotated[str, Field(min_length=1, max_length=200)]
    trigger: Trigger
    audience: Audience = Field(default_factory=Audience)
    actions: tuple[Action, ...]
    controls: Controls = Field(default_factory=Controls)

    @field_validator("name")
    @classmethod
    def _name_printable(cls, value: str) -> str:
        # Stored as given: NUL (PostgreSQL cannot store it) and the like are refused.
        if any(not character.isprintable() for character in value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("actions")
    @classmethod
    def _some_action(cls, value: tuple[Action, ...]) -> tuple[Action, ...]:
        if not value:
            raise ValueError("a campaign needs at least one action")
        return value

    @model_validator(mode="after")
    def _can_fire_and_act(self) -> CampaignDefinition:
        for problem in (
            _tier_outside_audience(self),
            _blast_outside_window(self),
            _budget_without_spending(self),
            _coupons_expire_before_start(self),
        ):
            if problem:
                raise ValueError(problem)
        return self

    def cost_per_member(self) -> int:
        """What one treatment member takes from the budget if every action goes out."""
        return budget_cost(self.actions, self.controls.budget)


def budget_cost(actions: tuple[Action, ...], budget: Budget | None) -> int:
    """The cost of these actions in the budget's unit (0 without a budget)."""
    if budget is None:
        return 0
    if budget.unit == "coupons":
        return sum(1 for a in actions if isinstance(a, CouponAction))
    return sum(a.points for a in actions if isinstance(a, BonusPointsAction))


def _tier_outside_audience(c: CampaignDefinition) -> str | None:
    trigger, tiers = c.trigger, c.audience.tiers
    if isinstance(trigger, TierChangedTrigger) and tiers and trigger.to_tier not in tiers:
        return (
            f"audience.tiers: excludes trigger.to_tier {trigger.to_tier!r}, "
            "so the campaign could never fire"
        )
    return None


def _blast_outside_window(c: CampaignDefinition) -> str | None:
    if not isinstance(c.trigger, BlastTrigger):
        return None
    at, window = c.trigger.send_at, c.controls
    if (window.starts_at and at < window.starts_at) or (window.ends_at and at >= window.ends_at):
        return "trigger.send_at: outside controls.starts_at..ends_at, so the blast never fires"
    return None


def _budget_without_spending(c: CampaignDefinition) -> str | None:
    budget = c.controls.budget
    if budget is None:
        return None
    cost = c.cost_per_member()
    if cost == 0:
        what = "issues no coupons" if budget.unit == "coupons" else "awards no points"
        return f"controls.budget.unit: the campaign {what}; budget {budget.unit} has no meaning"
    if cost > budget.limit:
        return (
            f"controls.budget.limit: {budget.limit} is less than one member's cost {cost}, "
            "so the campaign could never act"
        )
    return None


def _coupons_expire_before_start(c: CampaignDefinition) -> str | None:
    first_send = c.trigger.send_at if isinstance(c.trigger, BlastTrigger) else c.controls.starts_at
    if first_send is None:
        return None
    for i, action in enumerate(c.actions):
        expires = action.valid_until if isinstance(action, CouponAction) else None
        if expires is not None and expires <= first_send:
            return f"actions[{i}].valid_until: the coupons would expire before they are issued"
    return None


# ---------- what campaign-svc projects about a member ----------


class MemberProjection(_Value):
    """campaign-svc's local view of a member, built from events (no personal data).

    `purchase_count` already includes the purchase being handled when a handler evaluates
    an `order.purchased` trigger; `tier` already reflects the `tier.changed` being handled.
    """

    member_id: UUID
    birth_month: Annotated[int, Field(ge=1, le=12)] | None = None
    birth_day: Annotated[int, Field(ge=1, le=31)] | None = None
    time_zone: str = "UTC"
    consents: dict[Channel, bool] = Field(default_factory=dict)
    tier: str | None = None
    rfm_segment: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    purchase_count: Annotated[int, Field(ge=0)] = 0
