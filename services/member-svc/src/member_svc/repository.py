"""Persistence of members, consents and intake: the only module of member-svc that writes SQL.

Every function runs inside the caller's transaction and never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from memberflow_events.payloads import Channel
from sqlalchemy import Row, delete, insert, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from member_svc.domain import Activity, ConsentChange, Feedback, Member
from member_svc.models import activities, consent_changes, feedback, member_consents, members
from member_svc.pagination import Position

# Idempotency-key scopes; the responses stored under them carry the member id only.
REGISTRATION_SCOPE = "member-svc:register"
ACTIVITY_SCOPE = "member-svc:activity"
FEEDBACK_SCOPE = "member-svc:feedback"

# Unique constraints of `members` and the request field each one protects.
_UNIQUE_FIELDS = {
    "members_email_key": "email",
    "members_external_id_key": "external_id",
    "members_referral_code_key": "referral_code",
}


class DuplicateValue(Exception):
    """A unique value (email, external id, referral code) already belongs to another member."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} already in use")
        self.field = field


@dataclass(frozen=True)
class CurrentConsent:
    channel: Channel
    granted: bool
    updated_at: datetime


@dataclass(frozen=True)
class SearchFilter:
    email: str | None = None
    phone: str | None = None
    external_id: str | None = None


async def lock(session: AsyncSession, key: str) -> None:
    """Serialise transactions that claim the same unique value (held until commit)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"member-svc:{key}"},
    )


# ---------- members ----------


def _member(row: Row[Any]) -> Member:
    return Member(
        id=row.id,
        status=row.status,
        external_id=row.external_id,
        email=row.email,
        phone=row.phone,
        first_name=row.first_name,
        last_name=row.last_name,
        birthday=row.birthday,
        time_zone=row.time_zone,
        attributes=dict(row.attributes),
        referral_code=row.referral_code,
        referred_by=row.referred_by,
        registration_fingerprint=row.registration_fingerprint,
        created_at=row.created_at,
        updated_at=row.updated_at,
        erased_at=row.erased_at,
    )


def _columns(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "status": member.status,
        "external_id": member.external_id,
        "email": member.email,
        "phone": member.phone,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "birthday": member.birthday,
        "time_zone": member.time_zone,
        "attributes": dict(member.attributes),
        "referral_code": member.referral_code,
        "referred_by": member.referred_by,
        "registration_fingerprint": member.registration_fingerprint,
        "created_at": member.created_at,
        "updated_at": member.updated_at,
        "erased_at": member.erased_at,
    }


async def get_member(
    session: AsyncSession, member_id: UUID, *, for_update: bool = False
) -> Member | None:
    query = select(members).where(members.c.id == member_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return _member(row) if row is not None else None


async def find_by_external_id(session: AsyncSession, external_id: str) -> Member | None:
    query = select(members).where(members.c.external_id == external_id)
    row = (await session.execute(query)).first()
    return _member(row) if row is not None else None


async def find_by_referral_code(session: AsyncSession, code: str) -> Member | None:
    row = (await session.execute(select(members).where(members.c.referral_code == code))).first()
    return _member(row) if row is not None else None


async def email_owner(session: AsyncSession, email: str) -> UUID | None:
    owner = await session.scalar(select(members.c.id).where(members.c.email == email))
    return cast(UUID | None, owner)


async def referral_code_taken(session: AsyncSession, code: str) -> bool:
    found = await session.scalar(select(members.c.id).where(members.c.referral_code == code))
    return found is not None


async def _write(session: AsyncSession, statement: Any) -> None:
    try:
        async with session.begin_nested():
            await session.execute(statement)
    except IntegrityError as error:
        message = str(error.orig)
        for constraint, field in _UNIQUE_FIELDS.items():
            if constraint in message:
                raise DuplicateValue(field) from None
        raise


async def insert_member(session: AsyncSession, member: Member) -> None:
    """Insert a new member; DuplicateValue if a unique value was taken meanwhile."""
    await _write(session, insert(members).values(**_columns(member)))


async def save_member(session: AsyncSession, member: Member) -> None:
    """Store every column of an existing member; DuplicateValue as for insert_member."""
    values = _columns(member)
    del values["id"]
    await _write(session, update(members).where(members.c.id == member.id).values(**values))


async def list_members(
    session: AsyncSession, *, after: Position | None, limit: int, search: SearchFilter
) -> list[Member]:
    """Up to `limit` members in (created_at, id) order, strictly after `after`."""
    query = select(members).order_by(members.c.created_at, members.c.id).limit(limit)
    if after is not None:
        query = query.where(
            tuple_(members.c.created_at, members.c.id) > tuple_(after.created_at, after.member_id)
        )
    if search.email is not None:
        query = query.where(members.c.email == search.email)
    if search.phone is not None:
        query = query.where(members.c.phone == search.phone)
    if search.external_id is not None:
        query = query.where(members.c.external_id == search.external_id)
    return [_member(row) for row in await session.execute(query)]


async def referred_members(session: AsyncSession, member_id: UUID) -> list[UUID]:
    query = (
        select(members.c.id)
        .where(members.c.referred_by == member_id)
        .order_by(members.c.created_at, members.c.id)
    )
    return list((await session.scalars(query)).all())


# ---------- consent ----------


async def current_consents(session: AsyncSession, member_id: UUID) -> list[CurrentConsent]:
    query = (
        select(member_consents)
        .where(member_consents.c.member_id == member_id)
        .order_by(member_consents.c.channel)
    )
    return [
        CurrentConsent(channel=row.channel, granted=row.granted, updated_at=row.updated_at)
        for row in await session.execute(query)
    ]


async def current_consents_of_many(
    session: AsyncSession, member_ids: Sequence[UUID]
) -> dict[UUID, list[CurrentConsent]]:
    """Current consents of several members in one query (for a page of members)."""
    found: dict[UUID, list[CurrentConsent]] = {member_id: [] for member_id in member_ids}
    query = (
        select(member_consents)
        .where(member_consents.c.member_id.in_(member_ids))
        .order_by(member_consents.c.member_id, member_consents.c.channel)
    )
    for row in await session.execute(query):
        found[row.member_id].append(
            CurrentConsent(channel=row.channel, granted=row.granted, updated_at=row.updated_at)
        )
    return found


async def consent_map(session: AsyncSession, member_id: UUID) -> dict[Channel, bool]:
    current = await current_consents(session, member_id)
    return {consent.channel: consent.granted for consent in current}


async def record_consent_changes(
    session: AsyncSession, member_id: UUID, changes: Sequence[ConsentChange]
) -> None:
    """Append to the history and set the current state of each changed channel."""
    for change in changes:
        await session.execute(
            insert(consent_changes).values(
                member_id=member_id,
                channel=change.channel,
                granted=change.granted,
                source=change.source,
                changed_at=change.changed_at,
            )
        )
        upsert = pg_insert(member_consents).values(
            member_id=member_id,
            channel=change.channel,
            granted=change.granted,
            updated_at=change.changed_at,
        )
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=[member_consents.c.member_id, member_consents.c.channel],
                set_={"granted": upsert.excluded.granted, "updated_at": upsert.excluded.updated_at},
            )
        )


async def consent_history(session: AsyncSession, member_id: UUID) -> list[ConsentChange]:
    query = (
        select(consent_changes)
        .where(consent_changes.c.member_id == member_id)
        .order_by(consent_changes.c.id)
    )
    return [
        ConsentChange(
            channel=row.channel, granted=row.granted, source=row.source, changed_at=row.changed_at
        )
        for row in await session.execute(query)
    ]


# ---------- intake ----------


async def insert_activity(session: AsyncSession, activity: Activity) -> None:
    await session.execute(
        insert(activities).values(
            id=activity.id,
            member_id=activity.member_id,
            kind=activity.kind,
            channel=activity.channel,
            store_id=activity.store_id,
            occurred_at=activity.occurred_at,
            received_at=activity.received_at,
        )
    )


async def insert_feedback(session: AsyncSession, answer: Feedback) -> None:
    await session.execute(
        insert(feedback).values(
            id=answer.id,
            member_id=answer.member_id,
            nps_score=answer.nps_score,
            comment=answer.comment,
            received_at=answer.received_at,
        )
    )


async def activities_of(session: AsyncSession, member_id: UUID) -> list[Activity]:
    query = (
        select(activities)
        .where(activities.c.member_id == member_id)
        .order_by(activities.c.occurred_at, activities.c.id)
    )
    return [
        Activity(
            id=row.id,
            member_id=row.member_id,
            kind=row.kind,
            channel=row.channel,
            store_id=row.store_id,
            occurred_at=row.occurred_at,
            received_at=row.received_at,
        )
        for row in await session.execute(query)
    ]


async def feedback_of(session: AsyncSession, member_id: UUID) -> list[Feedback]:
    query = (
        select(feedback)
        .where(feedback.c.member_id == member_id)
        .order_by(feedback.c.received_at, feedback.c.id)
    )
    return [
        Feedback(
            id=row.id,
            member_id=row.member_id,
            nps_score=row.nps_score,
            comment=row.comment,
            received_at=row.received_at,
        )
        for row in await session.execute(query)
    ]


# ---------- erasure ----------


async def scrub_member_data(session: AsyncSession, member_id: UUID) -> None:
    """Remove personal data held beside the member row (see domain.erase for the row itself).

    Consent history and free-text feedback comments go; the member's stored responses in
    the idempotency table go too (their request hashes were computed from personal data).
    """
    await session.execute(delete(consent_changes).where(consent_changes.c.member_id == member_id))
    await session.execute(delete(member_consents).where(member_consents.c.member_id == member_id))
    await session.execute(
        update(feedback).where(feedback.c.member_id == member_id).values(comment=None)
    )
    await session.execute(
        text(
            "DELETE FROM idempotency_keys"
            " WHERE scope = ANY(:scopes) AND body ->> 'member_id' = :member"
        ),
        {
            "scopes": [REGISTRATION_SCOPE, ACTIVITY_SCOPE, FEEDBACK_SCOPE],
            "member": str(member_id),
        },
    )
