"""The accounts and postings of one consumer batch: loaded together, written together.

The inbox consumer applies a batch of events in one transaction and runs `BatchHooks`
around the handlers. `prepare` locks every account the batch's purchases and bonuses
credit (in member order, so two batches never deadlock) and loads them, with which of
its orders were credited already and which have events parked, in two statements for
the whole batch. Handlers then work on this state (`ctx.batch`), which keeps the newest
state of every account locked, the orders credited or refunded and the lots created;
`flush` writes every posting in one statement after the last handler. Reads consult
the state first, so an event sees the effect of the earlier events of its batch exactly
as if they had been written; what `prepare` did not load (a refund's account, an event
released from parking) is locked and loaded when first needed. A batch that fails is
rolled back whole and its state is dropped with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from memberflow_events.envelope import Envelope
from memberflow_events.inbox import BatchHooks, BatchState, HandlerContext
from memberflow_events.payloads import BonusAwarded, OrderPurchased
from sqlalchemy.ext.asyncio import AsyncSession

from points_svc import repository
from points_svc.domain import Posting
from points_svc.repository import LoadedAccount, PostingWrite, StoredOrder

_KEY = "points_svc.consumer_batch"


@dataclass
class ConsumerBatch:
    accounts: dict[UUID, LoadedAccount] = field(default_factory=dict)
    orders: dict[str, StoredOrder] = field(default_factory=dict)
    lot_ids: set[UUID] = field(default_factory=set)
    writes: list[PostingWrite] = field(default_factory=list)
    # Orders whose flags `prepare` read: credited before the batch, and wait keys with
    # parked events (kept current as handlers park and release).
    checked_orders: set[str] = field(default_factory=set)
    known_orders: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)
    prepared: bool = False  # postings are only written by `flush`: refuse them without it


def wait_key(order_id: str) -> str:
    """Where events that need this order (a refund before its purchase) are parked."""
    return f"order:{order_id}"


def batch_hooks(consumer: str) -> BatchHooks:
    """The hooks the inbox consumer runs around a batch of points-svc's handlers."""

    async def prepare(session: AsyncSession, events: Sequence[Envelope], state: BatchState) -> None:
        await _prepare(session, consumer, events, _batch(state))

    async def flush(session: AsyncSession, state: BatchState) -> None:
        batch = state.pop(_KEY, None)
        if isinstance(batch, ConsumerBatch) and batch.writes:
            await repository.write_postings(session, batch.writes)

    return BatchHooks(prepare=prepare, flush=flush)


async def _prepare(
    session: AsyncSession, consumer: str, events: Sequence[Envelope], batch: ConsumerBatch
) -> None:
    members: set[UUID] = set()
    order_ids: list[str] = []
    latest = max(event.occurred_at for event in events)
    for event in events:
        if event.member_id is None:
            continue
        if event.type == OrderPurchased.event_type:
            members.add(event.member_id)
            order_ids.append(event.payload_as(OrderPurchased).order_id)
        elif event.type == BonusAwarded.event_type:
            members.add(event.member_id)
    batch.prepared = True
    # Handlers use each event's time as `now`: lots expiring after the latest of them
    # count in every balance_after of the batch and can stay in storage.
    batch.accounts.update(await repository.lock_accounts(session, members, lots_until=latest))
    batch.checked_orders.update(order_ids)
    known, waiting = await repository.order_flags_of(
        session, order_ids, consumer, [wait_key(o) for o in order_ids]
    )
    batch.known_orders.update(known)
    batch.waiting.update(waiting)


def _batch(state: BatchState) -> ConsumerBatch:
    batch = state.get(_KEY)
    if batch is None:
        batch = state[_KEY] = ConsumerBatch()
    assert isinstance(batch, ConsumerBatch)
    return batch


async def lock_account(
    ctx: HandlerContext,
    member_id: UUID,
    *,
    order_id: str | None = None,
    order_lot: UUID | None = None,
) -> LoadedAccount:
    """`repository.lock_account`, answered from the batch once the account is locked.

    With `order_id`, also whether that order was credited and whether events wait for it.
    The batch's accounts may hold only the lots a credit needs (`Account.unloaded`);
    a refund (`order_lot`) gets every live lot.
    """
    batch = _batch(ctx.batch)
    held = batch.accounts.get(member_id)
    if held is None:
        parked = (ctx.consumer, wait_key(order_id)) if order_id is not None else None
        loaded = await repository.lock_account(
            ctx.session, member_id, order_id=order_id, order_lot=order_lot, parked=parked
        )
        if order_id in batch.orders:
            loaded = replace(loaded, order_known=True)
        batch.accounts[member_id] = loaded
        return loaded
    # Locked earlier in this transaction: the batch holds its newest state.
    order_known = events_waiting = False
    if order_id is not None:
        key = wait_key(order_id)
        if order_id in batch.checked_orders:
            stored_known, events_waiting = order_id in batch.known_orders, key in batch.waiting
        else:
            stored_known, events_waiting = await repository.order_flags(
                ctx.session, order_id, (ctx.consumer, key)
            )
        order_known = order_id in batch.orders or stored_known
    account = held.account
    unloaded = account.unloaded
    if unloaded is not None and (order_lot is not None or ctx.event.occurred_at > unloaded.until):
        # A refund takes from lots; a later event's balance needs them all.
        account = await repository.load_unloaded_lots(ctx.session, account, member_id)
    if order_lot is not None and account.lot(order_lot) is None:
        # Not changed in this batch (it would be held), so the stored lot is current.
        lot = await repository.load_lot(ctx.session, order_lot)
        if lot is not None:
            account = replace(account, lots=(*account.lots, lot))
    return replace(held, account=account, order_known=order_known, events_waiting=events_waiting)


async def park(ctx: HandlerContext, order_id: str, reason: str) -> None:
    """Park the current event until the order's purchase is applied."""
    await ctx.park(wait_key(order_id), reason)
    _batch(ctx.batch).waiting.add(wait_key(order_id))


async def release(ctx: HandlerContext, order_id: str) -> None:
    """Apply the events parked for this order right after the current one."""
    await ctx.release(wait_key(order_id))
    _batch(ctx.batch).waiting.discard(wait_key(order_id))


async def find_order(ctx: HandlerContext, order_id: str) -> StoredOrder | None:
    found = _batch(ctx.batch).orders.get(order_id)
    return found or await repository.find_order(ctx.session, order_id)


async def lot_exists(ctx: HandlerContext, lot_id: UUID) -> bool:
    return lot_id in _batch(ctx.batch).lot_ids or await repository.lot_exists(ctx.session, lot_id)


def record(
    ctx: HandlerContext,
    member_id: UUID,
    posting: Posting,
    *,
    campaign_id: UUID | None = None,
    multiplier: Decimal = Decimal(1),
    purchased_at: datetime | None = None,
) -> None:
    """Queue a posting for `flush` and make its effect visible to the rest of the batch."""
    batch = _batch(ctx.batch)
    if not batch.prepared:
        raise RuntimeError("points-svc handlers run only with consumer_batch.batch_hooks")
    batch.writes.append(PostingWrite(member_id, posting, campaign_id, multiplier, purchased_at))
    held = batch.accounts[member_id]
    batch.accounts[member_id] = replace(held, account=posting.account)
    if posting.order is not None:
        batch.orders[posting.order.order_id] = StoredOrder(member_id, posting.order)
    batch.lot_ids.update(lot.lot_id for lot in posting.lots)


async def refresh_multiplier(ctx: HandlerContext, member_id: UUID) -> None:
    """After a tier change, the member's later purchases in the batch earn with the
    projected multiplier (which an older, late change does not replace)."""
    batch = _batch(ctx.batch)
    held = batch.accounts.get(member_id)
    if held is not None:
        multiplier = await repository.tier_multiplier(ctx.session, member_id)
        batch.accounts[member_id] = replace(held, multiplier=multiplier)
