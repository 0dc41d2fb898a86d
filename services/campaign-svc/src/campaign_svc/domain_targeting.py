"""Who gets what, when: triggers, audience, control group, caps, budget, birthdays, the plan.

Pure functions; time comes in as `now`. Rules: docs/decisions/0004-campaign-rules.md.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum
from typing import Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from campaign_svc.domain_definitions import (
    Action,
    Audience,
    BirthdayTrigger,
    BlastTrigger,
    Budget,
    CampaignDefinition,
    Channel,
    ChurnRiskTrigger,
    Controls,
    CouponAction,
    FrequencyCap,
    MemberProjection,
    MemberRegisteredTrigger,
    MessageAction,
    NthPurchaseTrigger,
    PointsExpiringTrigger,
    TierChangedTrigger,
    budget_cost,
)

Group = Literal["treatment", "control"]


# ---------- triggers ----------


def matches_trigger(
    definition: CampaignDefinition,
    event_type: str,
    payload: Mapping[str, object],
    member: MemberProjection,
) -> bool:
    """Whether this event fires the campaign's event trigger (schedules never match events)."""
    trigger = definition.trigger
    match trigger:
        case MemberRegisteredTrigger():
            return event_type == "member.registered"
        case TierChangedTrigger():
            return (
                event_type == "tier.changed"
                and payload.get("to_tier") == trigger.to_tier
                and payload.get("direction") in trigger.directions
            )
        case ChurnRiskTrigger():
            score = _number(payload, "score")
            return (
                event_type == "member.churn_risk"
                and score is not None
                and (score >= trigger.min_score)
            )
        case PointsExpiringTrigger():
            points = _number(payload, "points")
            return (
                event_type == "points.expiring"
                and points is not None
                and (points >= trigger.min_points)
            )
        case NthPurchaseTrigger():
            return event_type == "order.purchased" and member.purchase_count == trigger.n
        case _:
            return False


def _number(payload: Mapping[str, object], key: str) -> float | None:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def occasion_key(definition: CampaignDefinition, member: MemberProjection, now: datetime) -> str:
    """The key of "once per member per occasion" (stored unique with campaign and member).

    Birthdays: once per member per local year. Blasts, welcome and nth purchase: once per
    member. Repeatable triggers (tier change, churn risk, expiring points): one occasion per
    triggering event, so the caller passes the event id; here they get "event".
    """
    match definition.trigger:
        case BirthdayTrigger():
            return f"birthday:{local_date(member.time_zone, now).year}"
        case BlastTrigger():
            return "blast"
        case MemberRegisteredTrigger():
            return "welcome"
        case NthPurchaseTrigger(n=n):
            return f"purchase:{n}"
        case _:
            return "event"


# ---------- schedules ----------


def zone(tz_name: str) -> tzinfo:
    """The member's time zone; an unknown name falls back to UTC rather than losing them."""
    try:
        return ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def local_date(tz_name: str, now_utc: datetime) -> date:
    """Today's date in the member's zone; a naive `now_utc` is a bug, not "local time"."""
    if now_utc.tzinfo is None:
        raise ValueError("now_utc must be timezone-aware")
    return now_utc.astimezone(zone(tz_name)).date()


def birthday_in_year(birth_month: int, birth_day: int, year: int) -> date:
    """The day a birthday is celebrated in `year`: Feb 29 → Feb 28 in common years.

    Any day past the month's end (e.g. Apr 31 from bad data) moves to its last day.
    """
    last = calendar.monthrange(year, birth_month)[1]
    return date(year, birth_month, min(birth_day, last))


def is_birthday_today(birth_month: int, birth_day: int, tz_name: str, now_utc: datetime) -> bool:
    today = local_date(tz_name, now_utc)
    return today == birthday_in_year(birth_month, birth_day, today.year)


def birthday_due(definition: CampaignDefinition, member: MemberProjection, now: datetime) -> bool:
    """For the daily birthday job: a birthday campaign and the member's birthday today."""
    if not isinstance(definition.trigger, BirthdayTrigger):
        return False
    if member.birth_month is None or member.birth_day is None:
        return False
    return is_birthday_today(member.birth_month, member.birth_day, member.time_zone, now)


def blast_due(definition: CampaignDefinition, now: datetime) -> bool:
    """For the blast job: a blast whose send time has come."""
    trigger = definition.trigger
    return isinstance(trigger, BlastTrigger) and now >= trigger.send_at


# ---------- audience and controls ----------


def has_consent(member: MemberProjection, channel: Channel) -> bool:
    """Consent is opt-in: a channel the member never answered for is not consented."""
    return member.consents.get(channel, False)


def in_audience(definition: CampaignDefinition, member: MemberProjection) -> bool:
    return _matches_audience(definition.audience, member)


def _matches_audience(audience: Audience, member: MemberProjection) -> bool:
    if audience.tiers is not None and member.tier not in audience.tiers:
        return False
    if audience.rfm_segments is not None and member.rfm_segment not in audience.rfm_segments:
        return False
    if any(member.attributes.get(k) != v for k, v in audience.attributes.items()):
        return False
    return all(has_consent(member, channel) for channel in audience.consents)


def is_active(controls: Controls, now: datetime) -> bool:
    """Active in [starts_at, ends_at): open ends are unbounded."""
    if controls.starts_at is not None and now < controls.starts_at:
        return False
    return controls.ends_at is None or now < controls.ends_at


_BUCKETS = 2**64


def control_group(campaign_id: UUID, member_id: UUID, share: Decimal | float) -> Group:
    """Deterministic assignment: the first 64 bits of sha256("<campaign>:<member>").

    The bucket is uniform in [0, 2**64); the member is in control when bucket < share·2**64,
    so the same pair always lands in the same group and shares nest (raising the share only
    moves treatment members into control).
    """
    digest = hashlib.sha256(f"{campaign_id}:{member_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big")
    limit = Decimal(str(share)) * _BUCKETS
    return "control" if bucket < limit else "treatment"


def frequency_cap_allows(
    previous_issue_times: Iterable[datetime], cap: FrequencyCap | None, now: datetime
) -> bool:
    """Fewer than max_count earlier exposures in the rolling period (now − period, now]."""
    if cap is None:
        return True
    since = now - timedelta(days=cap.period_days)
    recent = sum(1 for at in previous_issue_times if at > since)
    return recent < cap.max_count


def budget_allows(spent: int, cost: int, budget: Budget | None) -> bool:
    """All-or-nothing: the whole cost must fit; spending exactly up to the limit is allowed."""
    return budget is None or spent + cost <= budget.limit


# ---------- the plan ----------


class SkipReason(StrEnum):
    OUTSIDE_WINDOW = "outside_window"
    ALREADY_DONE = "already_done"
    NOT_IN_AUDIENCE = "not_in_audience"
    NO_CONSENT = "no_consent"
    COUPON_VALIDITY_ENDED = "coupon_validity_ended"
    FREQUENCY_CAP = "frequency_cap"
    BUDGET_EXHAUSTED = "budget_exhausted"


@dataclass(frozen=True)
class PlanCounters:
    """What persistence knows for this campaign and member.

    `previous_exposures`: this member's earlier exposures to the campaign (both groups);
    `budget_spent`: the campaign's spend so far in its budget unit;
    `occasion_done`: the occasion key (see `occasion_key`) was already used.
    """

    previous_exposures: tuple[datetime, ...] = ()
    budget_spent: int = 0
    occasion_done: bool = False


@dataclass(frozen=True)
class SkippedAction:
    action: Action
    reason: SkipReason


@dataclass(frozen=True)
class CampaignDecision:
    """What to do for one member: exposure (either group), actions (treatment only)."""

    group: Group
    exposed: bool
    actions: tuple[Action, ...] = ()
    budget_cost: int = 0
    skip_reason: SkipReason | None = None
    skipped_actions: tuple[SkippedAction, ...] = ()


def plan_actions(
    definition: CampaignDefinition,
    member: MemberProjection,
    group: Group,
    now: datetime,
    counters: PlanCounters,
) -> CampaignDecision:
    """Given that the trigger matched, decide what happens for this member.

    Every eligibility check runs for both groups, so control members are exposed exactly
    when treatment members would have been acted on (an unbiased uplift comparison).
    Eligible members of either group get a `campaign.exposed`; only treatment gets actions
    and spends budget. Actions the member cannot receive (no consent for a message channel,
    a coupon whose fixed validity has ended) are skipped one by one; if none is left the
    member is skipped as a whole.
    """

    def skipped(reason: SkipReason, dropped: tuple[SkippedAction, ...] = ()) -> CampaignDecision:
        return CampaignDecision(group, exposed=False, skip_reason=reason, skipped_actions=dropped)

    controls = definition.controls
    if not is_active(controls, now):
        return skipped(SkipReason.OUTSIDE_WINDOW)
    if counters.occasion_done:
        return skipped(SkipReason.ALREADY_DONE)
    if not in_audience(definition, member):
        return skipped(SkipReason.NOT_IN_AUDIENCE)
    deliverable, dropped = _deliverable_actions(definition.actions, member, now)
    if not deliverable:
        return skipped(dropped[0].reason, dropped)
    if not frequency_cap_allows(counters.previous_exposures, controls.frequency_cap, now):
        return skipped(SkipReason.FREQUENCY_CAP, dropped)
    cost = budget_cost(deliverable, controls.budget)
    if not budget_allows(counters.budget_spent, cost, controls.budget):
        return skipped(SkipReason.BUDGET_EXHAUSTED, dropped)
    if group == "control":
        return CampaignDecision(group, exposed=True, skipped_actions=dropped)
    return CampaignDecision(
        group, exposed=True, actions=deliverable, budget_cost=cost, skipped_actions=dropped
    )


def _deliverable_actions(
    actions: tuple[Action, ...], member: MemberProjection, now: datetime
) -> tuple[tuple[Action, ...], tuple[SkippedAction, ...]]:
    kept: list[Action] = []
    dropped: list[SkippedAction] = []
    for action in actions:
        reason = _why_undeliverable(action, member, now)
        if reason is None:
            kept.append(action)
        else:
            dropped.append(SkippedAction(action, reason))
    return tuple(kept), tuple(dropped)


def _why_undeliverable(
    action: Action, member: MemberProjection, now: datetime
) -> SkipReason | None:
    if isinstance(action, MessageAction) and not has_consent(member, action.channel):
        return SkipReason.NO_CONSENT
    if isinstance(action, CouponAction) and action.expiry_for(now) <= now:
        return SkipReason.COUPON_VALIDITY_ENDED
    return None
