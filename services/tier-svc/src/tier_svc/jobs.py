"""The daily tier evaluation: downgrades after protection, window decay, ladder changes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from memberflow_events.envelope import Envelope, new_event
from memberflow_events.outbox import add_to_outbox
from memberflow_events.payloads import TierChanged
from memberflow_platform.jobs import PeriodicJob
from memberflow_platform.runtime import Runtime
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tier_svc import moves, repository
from tier_svc.domain import (
    Ladder,
    TierState,
    UnknownTierError,
    decision_instant,
    evaluate,
    rolling_value,
    window_start,
)
from tier_svc.settings import TierSettings

log = logging.getLogger(__name__)

SERVICE = "tier-svc"
DAY_SECONDS = 24 * 60 * 60


async def run_daily_evaluation(
    sessions: async_sessionmaker[AsyncSession],
    ladder: Ladder | None,
    now: datetime,
    *,
    batch_size: int = 500,
) -> list[tuple[UUID, TierChanged]]:
    """Evaluate every member at `now` (domain.evaluate) and emit tier.changed for each move.

    Catches what no event triggers: downgrades once protection has ended and the value has
    decayed out of the window, and upgrades or downgrades due to a changed ladder. Members
    are taken in id order, one transaction per batch (state and outbox rows together), each
    locked while decided. Idempotent for a given `now`: a moved member is protected afresh.
    `ladder` None means the stored ladder, read in each batch under the ladder lock (so a
    tier removed meanwhile is never assigned); tests pass one to decide with.
    """
    changed: list[tuple[UUID, TierChanged]] = []
    after: UUID | None = None
    while True:
        async with sessions() as session, session.begin():
            current = (await repository.load_ladder(session)).ladder
            batch = await repository.members_to_evaluate(session, after, batch_size)
            if not batch:
                return changed
            changed.extend(await _evaluate_batch(session, ladder or current, batch, now))
            after = batch[-1][0]


async def _evaluate_batch(
    session: AsyncSession,
    ladder: Ladder,
    batch: Sequence[tuple[UUID, TierState]],
    now: datetime,
) -> list[tuple[UUID, TierChanged]]:
    since = window_start(now, ladder.window_days)
    ids = [member_id for member_id, _ in batch]
    grouped = await repository.contributions_of_members(session, ids, ladder.metric, since)
    changed: list[tuple[UUID, TierChanged]] = []
    events: list[Envelope] = []
    for member_id, state in batch:
        at = decision_instant(now, now, state.reached_at)
        value = rolling_value(grouped.get(member_id, []), at, ladder.window_days)
        try:
            change = evaluate(state, value, ladder, at)
        except UnknownTierError:
            log.error("member %s holds tier %r, not on the ladder", member_id, state.tier_code)
            continue
        if change is None:
            continue
        payload = await moves.apply_change(session, member_id, change, now)
        changed.append((member_id, payload))
        events.append(new_event(payload, producer=SERVICE, member_id=member_id, occurred_at=now))
    await add_to_outbox(session, events)
    return changed


async def evaluate_tiers(runtime: Runtime) -> None:
    """The periodic job: the stored ladder, the runtime's clock."""
    settings = runtime.settings
    batch_size = settings.evaluation_batch_size if isinstance(settings, TierSettings) else 500
    changed = await run_daily_evaluation(
        runtime.sessions, None, runtime.clock(), batch_size=batch_size
    )
    log.info("daily tier evaluation moved %d members", len(changed))


JOBS: Sequence[PeriodicJob] = (PeriodicJob("daily-tier-evaluation", DAY_SECONDS, evaluate_tiers),)
