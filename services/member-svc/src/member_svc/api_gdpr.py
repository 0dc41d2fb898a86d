"""GDPR: export everything held on a member, and erase the personal data."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from memberflow_events.payloads import MemberErased
from memberflow_platform.auth import ensure_member_access

from member_svc import domain, repository, views
from member_svc.api_common import (
    AnyCaller,
    Eraser,
    Session,
    emit,
    load_member,
    now_of,
)
from member_svc.schemas import (
    ExportView,
    MemberView,
)

router = APIRouter(prefix="/v1", tags=["members"])


@router.get("/members/{member_id}/export")
async def export_member(
    member_id: UUID, request: Request, session: Session, principal: AnyCaller
) -> ExportView:
    """Everything member-svc holds on the member (profile, consents, referrals, intake)."""
    ensure_member_access(principal, member_id)
    async with session.begin():
        member = await load_member(session, member_id)
        return await views.load_export(session, member, now_of(request))


@router.delete("/members/{member_id}")
async def erase_member(
    member_id: UUID, request: Request, session: Session, principal: Eraser
) -> MemberView:
    """Erase personal data (GDPR art. 17); the id stays valid. Erasing again changes nothing."""
    ensure_member_access(principal, member_id)
    now = now_of(request)
    async with session.begin():
        member = await load_member(session, member_id, for_update=True)
        if not member.is_erased:
            member = domain.erase(member, now)
            await repository.save_member(session, member)
            await repository.scrub_member_data(session, member_id)
            await emit(request, session, MemberErased(), member_id, now)
        return await views.load_member_view(session, member)
