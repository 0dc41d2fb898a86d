"""Scheduled work: expiry, release of pending lots, expiring-points reminders.

Each `run_*` is a plain function taking `now`, so tests call it with an injected time;
the periodic wrappers take `now` from the runtime's clock. Members are found in chunks
(ids in ascending order) and each account is posted in its own short transaction under
its row lock, so a job never holds many locks and a rerun is harmless.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from memberflow_events.envelope import EventPayload, new_event
from memberflow_events.outbox import add_to_outbox
from memberflow_platform.jobs import PeriodicJob
from memberflow_platform.runtime import Runtime
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from points_svc import domain, points_events, repository
from points_svc.domain import EarningRules
from points_svc.points_events import SERVICE
from points_svc.settings import PointsSettings

Sessions = async_sessionmaker[AsyncSession]
FindDue = Callable[[AsyncSession, UUID, int], Awaitable[list[UUID]]]
PostOne = Callable[[AsyncSession, UUID], Awaitable[int]]

DEFAULT_CHUNK = 500


async def run_expiry(
    sessions: Sessions, rules: EarningRules, now: datetime, chunk_size: int = DEFAULT_CHUNK
) -> int:
    """Write off every lot expired by `now`; returns the number of points.expired sent."""

    async def find(session: AsyncSession, after: UUID, limit: int) -> list[UUID]:
        return await repository.members_with_lots_to_expire(session, now, after, limit)

    async def post(session: AsyncSession, member_id: UUID) -> int:
        loaded = await repository.lock_account(session, member_id)
        posting = domain.expire(loaded.account, now)
        await repository.write_posting(session, member_id, posting)
        return await _announce(session, member_id, now, points_events.expired(posting, now))

    return await _for_each_due_member(sessions, find, post, chunk_size)


async def run_release(
    sessions: Sessions, rules: EarningRules, now: datetime, chunk_size: int = DEFAULT_CHUNK
) -> int:
    """Mark lots whose pending period ended; returns the number of points.released sent."""

    async def find(session: AsyncSession, after: UUID, limit: int) -> list[UUID]:
        return await repository.members_with_lots_to_release(session, now, after, limit)

    async def post(session: AsyncSession, member_id: UUID) -> int:
        loaded = await repository.lock_account(session, member_id, include_unreleased=True)
        posting, releases = domain.release(loaded.account, now)
        await repository.write_posting(session, member_id, posting)
        return await _announce(session, member_id, now, points_events.released(releases))

    return await _for_each_due_member(sessions, find, post, chunk_size)


async def run_reminders(
    sessions: Sessions, rules: EarningRules, now: datetime, chunk_size: int = DEFAULT_CHUNK
) -> int:
    """Announce points expiring within `rules.expiring_reminder_days`, each lot once;
    returns the number of points.expiring sent (one per member and expiry date)."""
    days_ahead = rules.expiring_reminder_days
    horizon = now + timedelta(days=days_ahead)

    async def find(session: AsyncSession, after: UUID, limit: int) -> list[UUID]:
        return await repository.members_with_lots_to_remind(session, now, horizon, after, limit)

    async def post(session: AsyncSession, member_id: UUID) -> int:
        loaded = await repository.lock_account(session, member_id)
        posting, reminders = domain.expiring_reminders(loaded.account, now, days_ahead)
        await repository.write_posting(session, member_id, posting)
        return await _announce(session, member_id, now, points_events.expiring(reminders))

    return await _for_each_due_member(sessions, find, post, chunk_size)


async def _for_each_due_member(
    sessions: Sessions, find: FindDue, post: PostOne, chunk_size: int
) -> int:
    after = repository.NO_MEMBER
    announced = 0
    while True:
        async with sessions() as session:
            due = await find(session, after, chunk_size)
        if not due:
            return announced
        for member_id in due:
            async with sessions() as session, session.begin():
                announced += await post(session, member_id)
        after = due[-1]


async def _announce(
    session: AsyncSession, member_id: UUID, now: datetime, payloads: Sequence[EventPayload]
) -> int:
    events = [
        new_event(payload, producer=SERVICE, member_id=member_id, occurred_at=now)
        for payload in payloads
    ]
    await add_to_outbox(session, events)
    return len(events)


class _JobWork(Protocol):
    def __call__(
        self, sessions: Sessions, rules: EarningRules, now: datetime, chunk_size: int = ...
    ) -> Awaitable[int]: ...


def build_jobs(settings: PointsSettings) -> list[PeriodicJob]:
    """The periodic wrappers: `now` from the runtime's clock, rules from the settings."""
    rules = settings.earning_rules()

    def periodic(name: str, interval: float, work: _JobWork) -> PeriodicJob:
        async def run(runtime: Runtime) -> None:
            await work(runtime.sessions, rules, runtime.clock(), settings.points_job_chunk_size)

        return PeriodicJob(name=name, interval_seconds=interval, run=run)

    return [
        periodic("points-release", settings.points_release_interval_seconds, run_release),
        periodic("points-expiry", settings.points_expiry_interval_seconds, run_expiry),
        periodic("points-reminders", settings.points_reminder_interval_seconds, run_reminders),
    ]
