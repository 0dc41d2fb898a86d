"""Response bodies built from domain values and repository reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from member_svc import repository
from member_svc.domain import Activity, ConsentChange, Feedback, Member
from member_svc.repository import CurrentConsent
from member_svc.schemas import (
    ActivityView,
    ConsentChangeView,
    ConsentsView,
    ConsentView,
    ExportView,
    FeedbackView,
    MemberView,
    ReferralsView,
)


def member_view(member: Member, consents: Sequence[CurrentConsent]) -> MemberView:
    return MemberView(
        id=member.id,
        status=member.status,
        external_id=member.external_id,
        email=member.email,
        phone=member.phone,
        first_name=member.first_name,
        last_name=member.last_name,
        birthday=member.birthday,
        time_zone=member.time_zone,
        attributes=dict(member.attributes),
        consents={consent.channel: consent.granted for consent in consents},
        referral_code=member.referral_code,
        referred_by=member.referred_by,
        created_at=member.created_at,
        updated_at=member.updated_at,
        erased_at=member.erased_at,
    )


def consents_view(
    member_id: UUID, current: Sequence[CurrentConsent], history: Sequence[ConsentChange]
) -> ConsentsView:
    return ConsentsView(
        member_id=member_id,
        consents=[
            ConsentView(channel=c.channel, granted=c.granted, updated_at=c.updated_at)
            for c in current
        ],
        history=[
            ConsentChangeView(
                channel=h.channel, granted=h.granted, source=h.source, changed_at=h.changed_at
            )
            for h in history
        ],
    )


def activity_view(activity: Activity) -> ActivityView:
    return ActivityView(
        id=activity.id,
        kind=activity.kind,
        channel=activity.channel,
        store_id=activity.store_id,
        occurred_at=activity.occurred_at,
        received_at=activity.received_at,
    )


def feedback_view(answer: Feedback) -> FeedbackView:
    return FeedbackView(
        id=answer.id,
        nps_score=answer.nps_score,
        comment=answer.comment,
        received_at=answer.received_at,
    )


async def load_member_view(session: AsyncSession, member: Member) -> MemberView:
    return member_view(member, await repository.current_consents(session, member.id))


async def load_member_views(session: AsyncSession, members: Sequence[Member]) -> list[MemberView]:
    consents = await repository.current_consents_of_many(session, [m.id for m in members])
    return [member_view(member, consents[member.id]) for member in members]


async def load_consents_view(session: AsyncSession, member_id: UUID) -> ConsentsView:
    return consents_view(
        member_id,
        await repository.current_consents(session, member_id),
        await repository.consent_history(session, member_id),
    )


async def load_export(session: AsyncSession, member: Member, now: datetime) -> ExportView:
    """Everything held on the member, read in one transaction so the parts agree."""
    consents = await load_consents_view(session, member.id)
    current = await repository.current_consents(session, member.id)
    return ExportView(
        exported_at=now,
        member=member_view(member, current),
        consents=consents,
        referrals=ReferralsView(
            referral_code=member.referral_code,
            referred_by=member.referred_by,
            referred_members=await repository.referred_members(session, member.id),
        ),
        activities=[activity_view(a) for a in await repository.activities_of(session, member.id)],
        feedback=[feedback_view(f) for f in await repository.feedback_of(session, member.id)],
    )
