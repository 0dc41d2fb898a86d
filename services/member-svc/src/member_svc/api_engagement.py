"""Consent per channel, and activity and NPS feedback intake (emitted as events)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from memberflow_events.ids import uuid7
from memberflow_events.payloads import Channel
from memberflow_platform.auth import ensure_member_access

from member_svc import domain, repository, views
from member_svc.api_common import (
    AnyCaller,
    Outcome,
    Session,
    checked,
    domain_errors,
    emit,
    load_member,
    now_of,
    once_per_key,
    optional_idempotency_key,
    settings_of,
)
from member_svc.domain import Activity, Feedback
from member_svc.repository import (
    ACTIVITY_SCOPE,
    FEEDBACK_SCOPE,
)
from member_svc.schemas import (
    Accepted,
    ActivityRequest,
    ConsentRequest,
    ConsentsView,
    FeedbackRequest,
)

router = APIRouter(prefix="/v1", tags=["members"])


# ---------- consent ----------


@router.put("/members/{member_id}/consents/{channel}")
async def set_consent(
    member_id: UUID,
    channel: Channel,
    body: ConsentRequest,
    request: Request,
    session: Session,
    principal: AnyCaller,
) -> ConsentsView:
    """Grant or withdraw consent for one channel; the change is kept in the history."""
    ensure_member_access(principal, member_id)
    now = now_of(request)
    source = domain.consent_source(principal.scopes, principal.subject)
    with domain_errors():
        async with session.begin():
            member = await load_member(session, member_id, for_update=True)
            domain.ensure_active(member)
            current = await repository.consent_map(session, member_id)
            change = domain.change_consent(current, channel, body.granted, source, now)
            if change is not None:
                await repository.record_consent_changes(session, member_id, [change])
                payload = domain.consent_updated_payload(domain.consents_after(current, change))
                await emit(request, session, payload, member_id, now)
            return await views.load_consents_view(session, member_id)


@router.get("/members/{member_id}/consents")
async def read_consents(member_id: UUID, session: Session, principal: AnyCaller) -> ConsentsView:
    """Current consent per channel and every change with its time and source."""
    ensure_member_access(principal, member_id)
    async with session.begin():
        await load_member(session, member_id)
        return await views.load_consents_view(session, member_id)


# ---------- activity and feedback intake ----------
# An Idempotency-Key is optional here: with one, a retried request is recorded once.

IntakeKey = Annotated[str | None, Depends(optional_idempotency_key)]


@router.post("/members/{member_id}/activities", status_code=202)
async def record_activity(
    member_id: UUID,
    body: ActivityRequest,
    request: Request,
    session: Session,
    principal: AnyCaller,
    key: IntakeKey,
) -> Accepted:
    """Log an engagement (login, visit, review, share, ...) and emit member.activity."""
    ensure_member_access(principal, member_id)
    settings = settings_of(request)
    now = now_of(request)
    kind = checked("kind", partial(domain.check_activity_kind, body.kind, settings.activity_kinds))
    skew = timedelta(seconds=settings.activity_clock_skew_seconds)
    occurred_at = (
        checked("occurred_at", partial(domain.check_occurred_at, body.occurred_at, now, skew))
        if body.occurred_at is not None
        else now
    )
    activity = Activity(
        id=uuid7(),
        member_id=member_id,
        kind=kind,
        channel=body.channel,
        store_id=body.store_id,
        occurred_at=occurred_at,
        received_at=now,
    )

    async def intake() -> Outcome:
        domain.ensure_active(await load_member(session, member_id, for_update=True))
        await repository.insert_activity(session, activity)
        payload = domain.activity_payload(activity)
        await emit(request, session, payload, member_id, activity.occurred_at)
        return 202, Accepted(id=activity.id, member_id=member_id).model_dump(mode="json")

    with domain_errors():
        async with session.begin():
            _, accepted = await once_per_key(
                session,
                scope=ACTIVITY_SCOPE,
                principal=principal,
                key=key,
                request_body={"member_id": str(member_id), **body.model_dump(mode="json")},
                action=intake,
            )
    return Accepted.model_validate(accepted)


@router.post("/members/{member_id}/feedback", status_code=202)
async def record_feedback(
    member_id: UUID,
    body: FeedbackRequest,
    request: Request,
    session: Session,
    principal: AnyCaller,
    key: IntakeKey,
) -> Accepted:
    """Log an NPS answer (0-10, optional comment) and emit member.feedback."""
    ensure_member_access(principal, member_id)
    now = now_of(request)
    comment = body.comment.strip() if body.comment else None
    answer = Feedback(
        id=uuid7(),
        member_id=member_id,
        nps_score=body.nps_score,
        comment=comment or None,
        received_at=now,
    )

    async def intake() -> Outcome:
        domain.ensure_active(await load_member(session, member_id, for_update=True))
        await repository.insert_feedback(session, answer)
        await emit(request, session, domain.feedback_payload(answer), member_id, now)
        return 202, Accepted(id=answer.id, member_id=member_id).model_dump(mode="json")

    with domain_errors():
        async with session.begin():
            _, accepted = await once_per_key(
                session,
                scope=FEEDBACK_SCOPE,
                principal=principal,
                key=key,
                request_body={"member_id": str(member_id), **body.model_dump(mode="json")},
                action=intake,
            )
    return Accepted.model_validate(accepted)
