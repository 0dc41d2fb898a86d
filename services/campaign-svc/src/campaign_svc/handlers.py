"""One async function per consumed event type: project the member, then fire campaigns.

Each runs inside the inbox consumer's transaction (the event's id is recorded in it), and
emits through `ctx.emit`, so projection, campaign effects and events commit together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from memberflow_events.envelope import Envelope
from memberflow_events.inbox import Handler, HandlerContext
from memberflow_events.payloads import (
    MemberChurnRisk,
    MemberRegistered,
    MemberSegmentChanged,
    MemberUpdated,
    OrderPurchased,
    PointsExpiring,
    TierChanged,
)

from campaign_svc import domain, repository
from campaign_svc.firing import fire, occasion_for


class MissingMember(Exception):
    """An event about a member that carries no member id can never apply."""


def _member_id(event: Envelope) -> UUID:
    if event.member_id is None:
        raise MissingMember(f"{event.type} {event.event_id} has no member_id")
    return event.member_id


async def parked_until_registered(ctx: HandlerContext) -> bool:
    """Park an event about a member whose registration has not been seen yet (topics are not
    ordered with each other); member.registered or member.erased releases it."""
    member_id = _member_id(ctx.event)
    if await repository.member_status(ctx.session, member_id) != "unknown":
        return False
    await ctx.park(_wait_key(member_id), "member.registered not seen yet")
    return True


def _wait_key(member_id: UUID) -> str:
    return f"member:{member_id}"


async def fire_event_trigger(ctx: HandlerContext, trigger_kind: str) -> None:
    """Fire every active campaign with this trigger kind whose trigger the event matches."""
    event = ctx.event
    member = await repository.get_member(ctx.session, _member_id(event))
    if member is None:  # erased: never targeted again
        return
    payload: Mapping[str, Any] = event.payload.model_dump(mode="json")
    for campaign in await repository.active_campaigns(ctx.session, trigger_kind):
        definition = campaign.definition
        if not domain.matches_trigger(definition, event.type, payload, member):
            continue
        occasion = occasion_for(definition, member, ctx.now, event.event_id)
        firing = await fire(ctx.session, campaign, member, ctx.now, occasion)
        for outgoing in firing.events:
            ctx.emit(outgoing, member.member_id)


async def on_member_registered(ctx: HandlerContext, event: Envelope) -> None:
    payload = event.payload_as(MemberRegistered)
    await repository.project_registration(
        ctx.session,
        _member_id(event),
        ctx.now,
        birth_month=payload.birth_month,
        birth_day=payload.birth_day,
        time_zone=payload.time_zone,
        consents=payload.consents,
        attributes=payload.attributes,
    )
    await fire_event_trigger(ctx, "member_registered")
    await ctx.release(_wait_key(_member_id(event)))


async def on_member_updated(ctx: HandlerContext, event: Envelope) -> None:
    if await parked_until_registered(ctx):
        return
    payload = event.payload_as(MemberUpdated)
    # null = "did not change": the encoded payload carries every field, absent ones as null
    changes = payload.model_dump(
        include={"birth_month", "birth_day", "time_zone", "attributes"}, exclude_none=True
    )
    await repository.project_update(
        ctx.session, _member_id(event), ctx.now, changes, payload.consents
    )


async def on_member_erased(ctx: HandlerContext, event: Envelope) -> None:
    await repository.erase_member(ctx.session, _member_id(event), ctx.now)
    await ctx.release(_wait_key(_member_id(event)))  # parked events now apply to nobody


async def on_tier_changed(ctx: HandlerContext, event: Envelope) -> None:
    if await parked_until_registered(ctx):
        return
    payload = event.payload_as(TierChanged)
    await repository.project_tier(ctx.session, _member_id(event), payload.to_tier, ctx.now)
    await fire_event_trigger(ctx, "tier_changed")


async def on_points_expiring(ctx: HandlerContext, event: Envelope) -> None:
    if await parked_until_registered(ctx):
        return
    event.payload_as(PointsExpiring)
    await fire_event_trigger(ctx, "points_expiring")


async def on_order_purchased(ctx: HandlerContext, event: Envelope) -> None:
    payload = event.payload_as(OrderPurchased)
    if payload.member_id is None:  # guest order: no member to count or target
        return
    if await parked_until_registered(ctx):
        return
    if await repository.count_purchase(ctx.session, payload.member_id, payload.order_id, ctx.now):
        await fire_event_trigger(ctx, "nth_purchase")


async def on_member_churn_risk(ctx: HandlerContext, event: Envelope) -> None:
    if await parked_until_registered(ctx):
        return
    event.payload_as(MemberChurnRisk)
    await fire_event_trigger(ctx, "churn_risk")


async def on_member_segment_changed(ctx: HandlerContext, event: Envelope) -> None:
    if await parked_until_registered(ctx):
        return
    payload = event.payload_as(MemberSegmentChanged)
    await repository.project_segment(ctx.session, _member_id(event), payload.rfm_segment, ctx.now)


HANDLERS: Mapping[str, Handler] = {
    "member.registered": on_member_registered,
    "member.updated": on_member_updated,
    "member.erased": on_member_erased,
    "tier.changed": on_tier_changed,
    "points.expiring": on_points_expiring,
    "order.purchased": on_order_purchased,
    "member.churn_risk": on_member_churn_risk,
    "member.segment_changed": on_member_segment_changed,
}
