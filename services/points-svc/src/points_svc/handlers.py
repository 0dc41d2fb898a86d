"""Consumed events: one function per type, event → domain → repository (+ emitted events).

Each runs in the inbox consumer's batch transaction (`ctx.session`), under the member's
account lock, and uses the event's `occurred_at` as the business time, so a replay of
historical events gives the same lots and dates. Accounts are locked and loaded for the
whole batch before the first handler and postings written after the last, each in one
go (`consumer_batch`, the consumer's batch hooks).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from uuid import UUID

from memberflow_events.envelope import Envelope
from memberflow_events.ids import uuid7
from memberflow_events.inbox import Handler, HandlerContext
from memberflow_events.payloads import (
    BonusAwarded,
    MemberErased,
    MemberRegistered,
    OrderPurchased,
    OrderRefunded,
    TierChanged,
)

from points_svc import consumer_batch, domain, points_events, repository
from points_svc.domain import EarningRules, InvalidRefund, Purchase, PurchaseLine, Source


def build_handlers(rules: EarningRules) -> Mapping[str, Handler]:
    """The handler of every consumed event type, bound to the earning rules."""
    return {
        OrderPurchased.event_type: partial(on_order_purchased, rules),
        OrderRefunded.event_type: on_order_refunded,
        TierChanged.event_type: on_tier_changed,
        BonusAwarded.event_type: partial(on_bonus_awarded, rules),
        MemberRegistered.event_type: on_member_registered,
        MemberErased.event_type: on_member_erased,
    }


def _member_of(event: Envelope) -> UUID:
    if event.member_id is None:
        raise ValueError(f"{event.type} without member_id cannot apply to a points account")
    return event.member_id


async def on_order_purchased(rules: EarningRules, ctx: HandlerContext, event: Envelope) -> None:
    """Credit the purchase once per order id; guest orders (no member) earn nothing."""
    order = event.payload_as(OrderPurchased)
    if order.member_id is None:
        return
    now = event.occurred_at
    loaded = await consumer_batch.lock_account(ctx, order.member_id, order_id=order.order_id)
    if not loaded.order_known:
        posting = domain.earn(
            loaded.account, _purchase(order), rules, loaded.multiplier, uuid7(), now
        )
        consumer_batch.record(
            ctx, order.member_id, posting, multiplier=loaded.multiplier, purchased_at=now
        )
        earned = points_events.earned(posting, now, multiplier=loaded.multiplier)
        if earned is not None:
            ctx.emit(earned)
    if loaded.events_waiting:  # a refund that arrived first, parked by on_order_refunded
        await consumer_batch.release(ctx, order.order_id)


def _purchase(order: OrderPurchased) -> Purchase:
    return Purchase(
        order_id=order.order_id,
        total_minor=order.total_minor,
        lines=tuple(
            PurchaseLine(line.category, line.quantity, line.unit_price_minor)
            for line in order.lines
        ),
    )


async def on_order_refunded(ctx: HandlerContext, event: Envelope) -> None:
    """Reverse the refunded share; a refund of a purchase not seen yet is parked."""
    refund = event.payload_as(OrderRefunded)
    if event.member_id is None:
        return  # a guest order earned nothing, so its refund takes nothing back
    seen = await consumer_batch.find_order(ctx, refund.order_id)
    if seen is None:
        await consumer_batch.park(ctx, refund.order_id, "purchase not seen yet")
        return
    if seen.member_id != event.member_id:
        raise InvalidRefund(f"order {refund.order_id} belongs to another member")
    loaded = await consumer_batch.lock_account(ctx, event.member_id, order_lot=seen.earning.lot_id)
    # Orders change only under their member's account lock: read it again once locked.
    stored = await consumer_batch.find_order(ctx, refund.order_id)
    assert stored is not None
    now = event.occurred_at
    posting = domain.reverse_for_refund(
        loaded.account, stored.earning, refund.refund_id, refund.amount_minor, now
    )
    if posting.order != stored.earning:
        consumer_batch.record(ctx, event.member_id, posting)
    reversed_event = points_events.reversed_for_refund(posting, refund.refund_id, now)
    if reversed_event is not None:
        ctx.emit(reversed_event)


async def on_bonus_awarded(rules: EarningRules, ctx: HandlerContext, event: Envelope) -> None:
    """Credit a campaign award once per award_id (the award id is the lot id)."""
    award = event.payload_as(BonusAwarded)
    member_id = _member_of(event)
    now = event.occurred_at
    loaded = await consumer_batch.lock_account(ctx, member_id)
    if await consumer_batch.lot_exists(ctx, award.award_id):
        return
    source = Source("bonus", str(award.award_id))
    posting = domain.credit(loaded.account, award.points, source, award.award_id, now, rules)
    consumer_batch.record(ctx, member_id, posting, campaign_id=award.campaign_id)
    earned = points_events.earned(posting, now, campaign_id=award.campaign_id)
    if earned is not None:
        ctx.emit(earned)


async def on_tier_changed(ctx: HandlerContext, event: Envelope) -> None:
    """Project the member's current multiplier; later purchases earn with it."""
    change = event.payload_as(TierChanged)
    member_id = _member_of(event)
    await repository.save_tier_multiplier(
        ctx.session, member_id, change.to_tier, change.multiplier, event.occurred_at
    )
    await consumer_batch.refresh_multiplier(ctx, member_id)


async def on_member_registered(ctx: HandlerContext, event: Envelope) -> None:
    """Open an empty account so the balance exists from the first day."""
    await repository.create_account(ctx.session, _member_of(event))


async def on_member_erased(ctx: HandlerContext, event: Envelope) -> None:
    """Nothing to forget: the ledger holds the member id only, never personal data.

    The account and its entries stay (financial records; liability must reconcile).
    """
