"""Schedules: birthdays (each member's own local day) and one-off blasts; coupon expiry.

Jobs run outside the inbox consumer, so they write their events to the outbox themselves
(`add_to_outbox`) in the transaction that records the exposures. Each is idempotent: the
occasion key (birthday:<local year>, blast) makes a rerun after a crash a no-op for the
members already handled.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar
from uuid import UUID

from memberflow_events.envelope import new_event
from memberflow_events.errors import is_transient
from memberflow_events.outbox import add_to_outbox
from memberflow_platform.jobs import PeriodicJob
from memberflow_platform.runtime import Runtime
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaign_svc import domain, repository
from campaign_svc.domain import CampaignDefinition, MemberProjection
from campaign_svc.firing import fire, occasion_for
from campaign_svc.repository import StoredCampaign
from campaign_svc.settings import CampaignSettings

log = logging.getLogger(__name__)

SERVICE = "campaign-svc"
Sessions = async_sessionmaker[AsyncSession]
T = TypeVar("T")
_ATTEMPTS = 5


async def _transaction(sessions: Sessions, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction, again on a transient error (deadlock, lost connection)."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            async with sessions() as session, session.begin():
                return await work(session)
        except Exception as error:
            if attempt == _ATTEMPTS or not is_transient(error):
                raise
            log.warning("campaign job transaction failed (attempt %d): %r", attempt, error)
    raise AssertionError("unreachable")


Due = Callable[[CampaignDefinition, MemberProjection], bool]


def _always(definition: CampaignDefinition, member: MemberProjection) -> bool:
    return True


async def _fire_for_members(
    session: AsyncSession,
    campaign_id: UUID,
    member_ids: Iterable[UUID],
    now: datetime,
    due: Due = _always,
) -> int | None:
    """Fire for each member still live and due, queueing the events; how many were exposed.

    The campaign and the members are read again in this transaction, so a campaign paused
    or a member erased since the job started is respected. None when the campaign is no
    longer active.
    """
    campaign = await repository.get_campaign(session, campaign_id)
    if campaign is None or campaign.status != "active":
        return None
    exposed = 0
    for member_id in member_ids:
        member = await repository.get_member(session, member_id)
        if member is None or not due(campaign.definition, member):
            continue
        occasion = occasion_for(campaign.definition, member, now, None)
        firing = await fire(session, campaign, member, now, occasion)
        exposed += firing.decision.exposed
        await add_to_outbox(
            session,
            [
                new_event(payload, producer=SERVICE, member_id=member.member_id, occurred_at=now)
                for payload in firing.events
            ],
        )
    return exposed


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---------- birthdays ----------


def birthday_days_around(now: datetime) -> set[tuple[int, int]]:
    """Every stored (month, day) that can be someone's birthday today somewhere on Earth.

    Local dates span the UTC date ±1; Feb 29 is celebrated on Feb 28 in common years and
    impossible days (Apr 31) on the month's last day, so those are included on last days.
    """
    days: set[tuple[int, int]] = set()
    for offset in (-1, 0, 1):
        day = (now + timedelta(days=offset)).date()
        days.add((day.month, day.day))
        if day.day == calendar.monthrange(day.year, day.month)[1]:
            days.update((day.month, later) for later in range(day.day + 1, 32))
    return days


async def run_birthday_campaigns(sessions: Sessions, now: datetime, batch_size: int = 200) -> int:
    """Fire active birthday campaigns for members whose local date is their birthday.

    Once per member per local year (occasion `birthday:<year>`); returns the number of
    exposures made by this run.
    """
    campaigns = await _transaction(
        sessions, partial(repository.active_campaigns, trigger_kind="birthday")
    )
    if not campaigns:
        return 0
    members = await _transaction(
        sessions, partial(repository.members_born_on, days=birthday_days_around(now))
    )
    due = partial(domain.birthday_due, now=now)
    exposed = 0
    for campaign in campaigns:
        ids = [m.member_id for m in members if due(campaign.definition, m)]
        for chunk in _chunks(ids, batch_size):
            count = await _transaction(
                sessions,
                partial(
                    _fire_for_members,
                    campaign_id=campaign.campaign_id,
                    member_ids=chunk,
                    now=now,
                    due=due,
                ),
            )
            if count is None:  # paused or ended meanwhile
                break
            exposed += count
    return exposed


# ---------- blasts ----------


async def _due_blasts(session: AsyncSession, now: datetime) -> list[StoredCampaign]:
    pending = await repository.pending_blasts(session)
    return [c for c in pending if domain.blast_due(c.definition, now)]


async def _blast_page(
    session: AsyncSession, campaign_id: UUID, after: UUID | None, limit: int, now: datetime
) -> tuple[int, UUID | None]:
    """Fire the blast for one page of members: the exposures, and the last member id while
    more pages follow (None once the blast is done or the campaign stopped)."""
    members = await repository.members_page(session, after, limit)
    exposed = await _fire_for_members(session, campaign_id, [m.member_id for m in members], now)
    if exposed is None:  # paused or ended: not marked done, a resumed blast goes on
        return 0, None
    if len(members) < limit:
        await repository.mark_blast_done(session, campaign_id, now)
        return exposed, None
    return exposed, members[-1].member_id


async def run_due_blasts(sessions: Sessions, now: datetime, batch_size: int = 200) -> int:
    """Send every active blast whose send_at has passed to its audience, once.

    Walks all live members in pages (the audience check is the domain's); the last page
    marks the blast done in its transaction, and a rerun skips members already exposed.
    """
    exposed = 0
    for campaign in await _transaction(sessions, partial(_due_blasts, now=now)):
        after: UUID | None = None
        while True:
            count, after = await _transaction(
                sessions,
                partial(
                    _blast_page,
                    campaign_id=campaign.campaign_id,
                    after=after,
                    limit=batch_size,
                    now=now,
                ),
            )
            exposed += count
            if after is None:
                break
    return exposed


# ---------- coupon expiry ----------


async def expire_coupons(sessions: Sessions, now: datetime) -> int:
    return await _transaction(sessions, partial(repository.expire_coupons, now=now))


def jobs_for(settings: CampaignSettings) -> Sequence[PeriodicJob]:
    """The periodic jobs, at the intervals configured in `settings`."""

    async def birthdays(runtime: Runtime) -> None:
        await run_birthday_campaigns(runtime.sessions, runtime.clock(), settings.job_batch_size)

    async def blasts(runtime: Runtime) -> None:
        await run_due_blasts(runtime.sessions, runtime.clock(), settings.job_batch_size)

    async def coupons(runtime: Runtime) -> None:
        await expire_coupons(runtime.sessions, runtime.clock())

    return (
        PeriodicJob("birthday-campaigns", settings.birthday_job_interval_seconds, birthdays),
        PeriodicJob("due-blasts", settings.blast_job_interval_seconds, blasts),
        PeriodicJob("coupon-expiry", settings.coupon_expiry_job_interval_seconds, coupons),
    )
