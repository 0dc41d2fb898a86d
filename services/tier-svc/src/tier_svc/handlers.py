"""Consumed events: order.purchased/refunded, member.registered/erased, points.earned/reversed.

Each handler runs in the consumer's batch transaction: event → repository reads → domain
decision → repository writes, with `tier.changed` queued through `ctx.emit` (the outbox).
Decisions are taken at the event's business time (`domain.decision_instant`), so replaying
the topics from the beginning takes the same decisions. The rules are in docs/api/tier-svc.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

from memberflow_events.envelope import Envelope
from memberflow_events.inbox import Handler, HandlerContext
from memberflow_events.payloads import (
    MemberErased,
    MemberRegistered,
    OrderPurchased,
    OrderRefunded,
    PointsEarned,
    PointsReversed,
)

from tier_svc import moves, repository
from tier_svc.domain import (
    ORDER_METRICS,
    Contribution,
    Ladder,
    QualifyingMetric,
    TierState,
    decision_instant,
    enroll,
    evaluate,
    evaluate_refund,
    in_window,
    points_reversal_contribution,
    purchase_contribution,
    refund_contribution,
)
from tier_svc.repository import NewContribution, QualifyingOrder


class MissingMember(ValueError):
    """A member event without a member id can never apply."""


class RefundOfAnotherMember(ValueError):
    """A refund names a different member than the purchase it refunds."""


def order_key(order_id: str) -> str:
    """Where a refund waits for its purchase."""
    return f"order:{order_id}"


def points_order_key(order_id: str) -> str:
    """Where a points reversal waits for the points earned by its order."""
    return f"points-order:{order_id}"


def _member_of(event: Envelope) -> UUID:
    if event.member_id is None:
        raise MissingMember(f"{event.type}: member_id is null")
    return event.member_id


async def _ladder(ctx: HandlerContext) -> Ladder:
    return (await repository.load_ladder(ctx.session)).ladder


async def _enrolled(
    ctx: HandlerContext, ladder: Ladder, member_id: UUID, at: datetime
) -> TierState:
    """The member's tier state, locked; enrols them at `at` (tier.changed "initial") if new.

    Members are enrolled by `member.registered`, or implicitly by a purchase or points
    credit that arrives first (topics are not ordered with each other).
    """
    state = await repository.get_state(ctx.session, member_id, for_update=True)
    if state is not None:
        return state
    change = enroll(await moves.value_at(ctx.session, member_id, ladder, at), ladder, at)
    if await repository.insert_state(
        ctx.session, member_id, change.new_state(), ctx.event.type, ctx.now
    ):
        ctx.emit(moves.tier_changed(change), member_id)
        return change.new_state()
    state = await repository.get_state(ctx.session, member_id, for_update=True)
    assert state is not None, "a concurrent enrolment committed the row"
    return state


async def _reevaluate(
    ctx: HandlerContext, ladder: Ladder, member_id: UUID, state: TierState, at: datetime
) -> None:
    """Upgrade (or, after protection, downgrade) to what the value at `at` meets."""
    change = evaluate(state, await moves.value_at(ctx.session, member_id, ladder, at), ladder, at)
    if change is not None:
        ctx.emit(await moves.apply_change(ctx.session, member_id, change, ctx.now), member_id)


async def _revoke_if_refunded_tier(
    ctx: HandlerContext,
    ladder: Ladder,
    member_id: UUID,
    state: TierState,
    purchased_at: datetime,
    at: datetime,
) -> None:
    """Take back a tier the refunded purchase had bought (domain.evaluate_refund)."""
    value = await moves.value_at(ctx.session, member_id, ladder, at)
    change = evaluate_refund(state, value, ladder, purchased_at, at)
    if change is not None:
        ctx.emit(await moves.apply_change(ctx.session, member_id, change, ctx.now), member_id)


def _lowers_value(
    metric: QualifyingMetric, contribution: Contribution, ladder: Ladder, at: datetime
) -> bool:
    """True when a negative contribution lowered the ladder's value at `at`."""
    return (
        metric is ladder.metric
        and contribution.value < 0
        and in_window(contribution, at, ladder.window_days)
    )


# ---------- members ----------


async def on_member_registered(ctx: HandlerContext, event: Envelope) -> None:
    """Enrol at the tier the value meets (the lowest for a new member): tier.changed initial."""
    member_id = _member_of(event)
    ladder = await _ladder(ctx)
    await _enrolled(ctx, ladder, member_id, decision_instant(event.occurred_at, ctx.now))


async def on_member_erased(ctx: HandlerContext, event: Envelope) -> None:
    """Nothing to forget: tier-svc holds no personal data, only tier data keyed by member id."""


# ---------- orders ----------


async def on_order_purchased(ctx: HandlerContext, event: Envelope) -> None:
    """Count the purchase for spend and orders, release its parked refunds, upgrade at once."""
    purchase = event.payload_as(OrderPurchased)
    if purchase.member_id is None:
        return  # guest order: no member, no tier
    member_id = purchase.member_id
    ladder = await _ladder(ctx)
    state = await _enrolled(ctx, ladder, member_id, decision_instant(event.occurred_at, ctx.now))
    order = QualifyingOrder(
        order_id=purchase.order_id,
        member_id=member_id,
        purchased_at=event.occurred_at,
        total_minor=purchase.total_minor,
        refunded_minor=0,
    )
    if not await repository.insert_order(ctx.session, order):
        return  # the same order delivered again under another event id counts once
    for metric in ORDER_METRICS:
        contribution = purchase_contribution(metric, event.occurred_at, purchase.total_minor)
        new = NewContribution(
            member_id, metric, "purchase", order.order_id, order.order_id, contribution
        )
        await repository.add_contribution(ctx.session, new, ctx.now)
    await ctx.release(order_key(order.order_id))
    if ladder.metric in ORDER_METRICS:
        at = decision_instant(event.occurred_at, ctx.now, state.reached_at)
        await _reevaluate(ctx, ladder, member_id, state, at)


async def on_order_refunded(ctx: HandlerContext, event: Envelope) -> None:
    """Take the refund off the value (dated at the purchase); revoke a tier it had bought.

    A refund whose purchase was not seen yet is parked until the purchase arrives.
    """
    refund = event.payload_as(OrderRefunded)
    if event.member_id is None:
        return  # refund of a guest order
    member_id = event.member_id
    ladder = await _ladder(ctx)  # the ladder lock before row locks, in every handler
    state = await repository.get_state(ctx.session, member_id, for_update=True)
    order = await repository.get_order(ctx.session, refund.order_id)
    if order is None:
        await ctx.park(order_key(refund.order_id), "purchase not seen yet")
        return
    if order.member_id != member_id or state is None:
        raise RefundOfAnotherMember(
            f"refund {refund.refund_id} names member {member_id}, "
            f"order {order.order_id} belongs to {order.member_id}"
        )
    if not await repository.record_refund(
        ctx.session, order.order_id, refund.refund_id, refund.amount_minor, event.occurred_at
    ):
        return  # this refund id was applied already
    at = decision_instant(event.occurred_at, ctx.now, state.reached_at)
    lowered = False
    for metric in ORDER_METRICS:
        contribution = refund_contribution(
            metric, order.purchased_at, refund.amount_minor, order.total_minor, order.refunded_minor
        )
        if contribution.value == 0:
            continue
        source_id = f"{order.order_id}/{refund.refund_id}"
        new = NewContribution(member_id, metric, "refund", source_id, order.order_id, contribution)
        await repository.add_contribution(ctx.session, new, ctx.now)
        lowered = lowered or _lowers_value(metric, contribution, ladder, at)
    if lowered:
        await _revoke_if_refunded_tier(ctx, ladder, member_id, state, order.purchased_at, at)


# ---------- points ----------


async def on_points_earned(ctx: HandlerContext, event: Envelope) -> None:
    """Count earned points (any source) for the points metric; upgrade if it is the metric."""
    earned = event.payload_as(PointsEarned)
    member_id = _member_of(event)
    ladder = await _ladder(ctx)
    state = await _enrolled(ctx, ladder, member_id, decision_instant(event.occurred_at, ctx.now))
    contribution = Contribution(event.occurred_at, earned.points)
    new = NewContribution(
        member_id,
        QualifyingMetric.POINTS,
        "points_earned",
        str(earned.lot_id),
        earned.order_id,
        contribution,
    )
    if not await repository.add_contribution(ctx.session, new, ctx.now):
        return  # this lot was counted already
    if earned.order_id is not None:
        await ctx.release(points_order_key(earned.order_id))
    if ladder.metric is QualifyingMetric.POINTS:
        at = decision_instant(event.occurred_at, ctx.now, state.reached_at)
        await _reevaluate(ctx, ladder, member_id, state, at)


async def on_points_reversed(ctx: HandlerContext, event: Envelope) -> None:
    """Take reversed points off (dated at the order's earning); revoke a tier they bought."""
    reversal = event.payload_as(PointsReversed)
    member_id = _member_of(event)
    ladder = await _ladder(ctx)
    state = await repository.get_state(ctx.session, member_id, for_update=True)
    earned = await repository.points_of_order(ctx.session, member_id, reversal.order_id)
    if state is None or earned is None:
        await ctx.park(points_order_key(reversal.order_id), "points.earned of the order not seen")
        return
    contribution = points_reversal_contribution(
        earned.earned_at, reversal.points, earned.earned, earned.reversed
    )
    if contribution.value == 0:
        return  # the order's points were all taken back already
    source_id = f"{reversal.order_id}/{reversal.refund_id}"
    new = NewContribution(
        member_id,
        QualifyingMetric.POINTS,
        "points_reversed",
        source_id,
        reversal.order_id,
        contribution,
    )
    if not await repository.add_contribution(ctx.session, new, ctx.now):
        return  # this reversal was applied already
    at = decision_instant(event.occurred_at, ctx.now, state.reached_at)
    if _lowers_value(QualifyingMetric.POINTS, contribution, ladder, at):
        await _revoke_if_refunded_tier(ctx, ladder, member_id, state, earned.earned_at, at)


HANDLERS: Mapping[str, Handler] = {
    OrderPurchased.event_type: on_order_purchased,
    OrderRefunded.event_type: on_order_refunded,
    MemberRegistered.event_type: on_member_registered,
    MemberErased.event_type: on_member_erased,
    PointsEarned.event_type: on_points_earned,
    PointsReversed.event_type: on_points_reversed,
}
