"""Fire one campaign for one member: the domain plan, then its effects, in the caller's
transaction.

Handlers (inbox consumer) and schedule jobs both come here; they differ only in how the
returned payloads reach the outbox. Everything a firing causes (exposure row, budget
spend, coupon row) is written in the same transaction as those events, so it happens
exactly once per triggering event or occasion.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from memberflow_events.envelope import EventPayload
from memberflow_events.ids import uuid7
from memberflow_events.payloads import (
    BonusAwarded,
    CampaignExposed,
    CouponIssued,
    MessageRequested,
)
from sqlalchemy.ext.asyncio import AsyncSession

from campaign_svc import domain, repository
from campaign_svc.domain import (
    BonusPointsAction,
    CampaignDecision,
    CampaignDefinition,
    CouponAction,
    MemberProjection,
    MessageAction,
    PlanCounters,
    SkipReason,
)
from campaign_svc.repository import StoredCampaign

_CODE_ATTEMPTS = 5


class CodeSpaceExhausted(Exception):
    """Several fresh 75-bit codes collided: something is wrong with the random source."""


@dataclass(frozen=True)
class Firing:
    """What happened for one member: the decision and the events to publish."""

    decision: CampaignDecision
    events: tuple[EventPayload, ...] = ()


def occasion_for(
    definition: CampaignDefinition, member: MemberProjection, now: datetime, event_id: UUID | None
) -> str:
    """The domain's occasion key; repeatable triggers key on the triggering event."""
    key = domain.occasion_key(definition, member, now)
    if key == "event":
        return f"event:{event_id}"
    return key


async def fire(
    session: AsyncSession,
    campaign: StoredCampaign,
    member: MemberProjection,
    now: datetime,
    occasion: str,
) -> Firing:
    """Decide for this member (both groups alike) and record what the decision causes."""
    definition = campaign.definition
    campaign_id = definition.campaign_id
    await repository.lock_member_in_campaign(session, campaign_id, member.member_id)
    counters = await _counters(session, definition, member.member_id, now, occasion)
    group = domain.control_group(campaign_id, member.member_id, definition.controls.control_share)
    decision = domain.plan_actions(definition, member, group, now, counters)
    if not decision.exposed:
        return Firing(decision)
    if decision.budget_cost and not await repository.spend_budget(
        session, campaign_id, decision.budget_cost
    ):
        # Another transaction took the rest of the budget after we read it.
        return Firing(
            replace(
                decision,
                exposed=False,
                actions=(),
                budget_cost=0,
                skip_reason=SkipReason.BUDGET_EXHAUSTED,
            )
        )
    await repository.record_exposure(
        session,
        exposure_id=uuid7(),
        campaign_id=campaign_id,
        member_id=member.member_id,
        group=group,
        occasion=occasion,
        now=now,
        cost=decision.budget_cost,
    )
    exposed = CampaignExposed(campaign_id=campaign_id, group=group, trigger=definition.trigger.kind)
    acted = await _act(session, definition, member.member_id, decision, now)
    return Firing(decision, (exposed, *acted))


async def _counters(
    session: AsyncSession,
    definition: CampaignDefinition,
    member_id: UUID,
    now: datetime,
    occasion: str,
) -> PlanCounters:
    campaign_id = definition.campaign_id
    cap = definition.controls.frequency_cap
    previous = (
        await repository.exposure_times(
            session, campaign_id, member_id, now - timedelta(days=cap.period_days)
        )
        if cap
        else ()
    )
    spent = await repository.budget_spent(session, campaign_id) if definition.controls.budget else 0
    done = await repository.occasion_used(session, campaign_id, member_id, occasion)
    return PlanCounters(previous_exposures=previous, budget_spent=spent, occasion_done=done)


async def _act(
    session: AsyncSession,
    definition: CampaignDefinition,
    member_id: UUID,
    decision: CampaignDecision,
    now: datetime,
) -> list[EventPayload]:
    """The treatment's actions: coupons first, so a message can carry the coupon's code."""
    events: list[EventPayload] = []
    codes: list[str] = []
    for action in decision.actions:
        if isinstance(action, CouponAction):
            issued = await _issue_coupon(session, definition.campaign_id, member_id, action, now)
            codes.append(issued.code)
            events.append(issued)
        elif isinstance(action, BonusPointsAction):
            events.append(
                BonusAwarded(
                    award_id=uuid7(),
                    campaign_id=definition.campaign_id,
                    points=action.points,
                    reason=action.reason,
                )
            )
    for action in decision.actions:
        if isinstance(action, MessageAction):
            events.append(_message(definition.campaign_id, action, codes))
    return events


async def _issue_coupon(
    session: AsyncSession, campaign_id: UUID, member_id: UUID, action: CouponAction, now: datetime
) -> CouponIssued:
    for _ in range(_CODE_ATTEMPTS):
        coupon = domain.issue_coupon(
            coupon_id=uuid7(),
            campaign_id=campaign_id,
            member_id=member_id,
            code=domain.generate_coupon_code(),
            terms=action.terms,
            valid_from=now,
            valid_until=action.expiry_for(now),
        )
        if await repository.insert_coupon(session, coupon, now):
            return CouponIssued(
                coupon_id=coupon.coupon_id,
                campaign_id=campaign_id,
                code=coupon.code,
                kind=coupon.terms.kind,
                value=coupon.terms.value,
                min_spend_minor=coupon.terms.min_spend_minor,
                valid_from=coupon.valid_from,
                valid_until=coupon.valid_until,
            )
    raise CodeSpaceExhausted(f"{_CODE_ATTEMPTS} coupon codes in a row were already taken")


def _message(campaign_id: UUID, action: MessageAction, codes: list[str]) -> MessageRequested:
    variables = dict(action.variables)
    if codes:
        variables.setdefault("coupon_code", codes[0])
    return MessageRequested(
        campaign_id=campaign_id,
        channel=action.channel,
        template=action.template,
        variables=variables,
    )
