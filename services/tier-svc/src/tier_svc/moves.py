"""Shared by handlers and the daily job: the rolling value a decision uses, and applying it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from memberflow_events.payloads import TierChanged
from sqlalchemy.ext.asyncio import AsyncSession

from tier_svc import repository
from tier_svc.domain import Contribution, Ladder, TierChange, rolling_value, window_start


async def window_contributions(
    session: AsyncSession, member_id: UUID, ladder: Ladder, at: datetime
) -> list[Contribution]:
    """The member's contributions to the ladder's metric that may count at `at`."""
    after = window_start(at, ladder.window_days)
    return await repository.member_contributions(session, member_id, ladder.metric, after)


async def value_at(session: AsyncSession, member_id: UUID, ladder: Ladder, at: datetime) -> int:
    """The member's rolling qualifying value at `at`, in the ladder's metric."""
    items = await window_contributions(session, member_id, ladder, at)
    return rolling_value(items, at, ladder.window_days)


def tier_changed(change: TierChange) -> TierChanged:
    """The `tier.changed` payload announcing a decision."""
    return TierChanged(
        from_tier=change.from_tier,
        to_tier=change.to_tier,
        direction=change.direction,
        reason=change.reason.value,
        qualifying_value=change.qualifying_value,
        multiplier=change.multiplier,
        protected_until=change.protected_until,
    )


async def apply_change(
    session: AsyncSession, member_id: UUID, change: TierChange, at: datetime
) -> TierChanged:
    """Store the member's new tier; return the event to emit in the same transaction."""
    await repository.save_state(session, member_id, change.new_state(), at)
    return tier_changed(change)
