"""Ops REST of campaigns: create (validated by the domain), list, read with stats, change
status or window, end."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from memberflow_events.ids import uuid7
from memberflow_platform.app import get_runtime, get_session
from memberflow_platform.auth import OPS, Principal, require
from memberflow_platform.problems import conflict, not_found
from sqlalchemy.ext.asyncio import AsyncSession

from campaign_svc import repository
from campaign_svc.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, decode_cursor, encode_cursor
from campaign_svc.repository import StoredCampaign
from campaign_svc.schemas import CampaignPage, CampaignPatch, CampaignView
from campaign_svc.validation import parse_definition

router = APIRouter(prefix="/v1", tags=["campaigns"])

Session = Annotated[AsyncSession, Depends(get_session)]
Ops = Annotated[Principal, Depends(require(OPS))]

_EXAMPLE = {
    "name": "Gold welcome",
    "trigger": {"kind": "tier_changed", "to_tier": "gold"},
    "audience": {"consents": ["email"]},
    "actions": [
        {
            "kind": "coupon",
            "terms": {"kind": "percent", "value": 15, "min_spend_minor": 2000, "currency": "EUR"},
            "valid_days": 30,
        },
        {"kind": "message", "channel": "email", "template": "gold_welcome"},
    ],
    "controls": {"frequency_cap": {"max_count": 1, "period_days": 30}, "control_share": "0.2"},
}


def _now(request: Request) -> datetime:
    return get_runtime(request).clock()


async def _load(
    session: AsyncSession, campaign_id: UUID, *, for_update: bool = False
) -> StoredCampaign:
    stored = await repository.get_campaign(session, campaign_id, for_update=for_update)
    if stored is None:
        raise not_found(f"campaign {campaign_id}")
    return stored


@router.post("/campaigns", status_code=201, response_model=CampaignView)
async def create_campaign(
    request: Request,
    session: Session,
    _: Ops,
    body: Annotated[
        dict[str, Any],
        Body(
            description="A campaign definition (docs/decisions/0004-campaign-rules.md); "
            "campaign_id is optional and generated when absent.",
            examples=[_EXAMPLE],
        ),
    ],
) -> JSONResponse:
    """Create a campaign; 422 names each field that makes it unable to fire or act."""
    document = {"campaign_id": str(uuid7()), **body}
    definition = parse_definition(document)
    now = _now(request)
    async with session.begin():
        if not await repository.insert_campaign(session, definition, now):
            raise conflict(f"campaign {definition.campaign_id} already exists", "campaign-exists")
        stored = await _load(session, definition.campaign_id)
    return JSONResponse(CampaignView.of(stored).model_dump(mode="json"), status_code=201)


@router.get("/campaigns")
async def list_campaigns(
    session: Session,
    _: Ops,
    status: Literal["active", "paused", "ended"] | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> CampaignPage:
    """Campaigns in creation order; follow `next_cursor` for the next page."""
    after = decode_cursor(cursor)
    async with session.begin():
        found = await repository.list_campaigns(session, status=status, after=after, limit=limit)
    last = found[-1] if len(found) == limit else None
    return CampaignPage(
        items=[CampaignView.of(c) for c in found],
        next_cursor=encode_cursor((last.created_at, last.campaign_id)) if last else None,
    )


@router.get("/campaigns/{campaign_id}")
async def read_campaign(
    campaign_id: UUID, request: Request, session: Session, _: Ops
) -> CampaignView:
    """The campaign with its stats: exposures per group, coupons by status, budget spent."""
    async with session.begin():
        stored = await _load(session, campaign_id)
        stats = await repository.campaign_stats(session, campaign_id, _now(request))
    return CampaignView.of(stored, stats)


@router.patch("/campaigns/{campaign_id}")
async def change_campaign(
    campaign_id: UUID, body: CampaignPatch, request: Request, session: Session, _: Ops
) -> CampaignView:
    """Pause, resume or end a campaign, or move its active window (re-validated)."""
    async with session.begin():
        stored = await _load(session, campaign_id, for_update=True)
        if stored.status == "ended":
            raise conflict(f"campaign {campaign_id} has ended; it cannot change", "campaign-ended")
        document = stored.definition.model_dump(mode="json")
        window = body.model_dump(mode="json", include={"starts_at", "ends_at"}, exclude_unset=True)
        document["controls"] = {**document["controls"], **window}
        definition = parse_definition(document)
        status = body.status or stored.status
        await repository.update_campaign(session, definition, status, _now(request))
        return CampaignView.of(await _load(session, campaign_id))


@router.delete("/campaigns/{campaign_id}")
async def end_campaign(
    campaign_id: UUID, request: Request, session: Session, _: Ops
) -> CampaignView:
    """End the campaign (kept for its stats and coupons); ending twice is harmless."""
    async with session.begin():
        stored = await _load(session, campaign_id, for_update=True)
        if stored.status != "ended":
            await repository.update_campaign(session, stored.definition, "ended", _now(request))
        return CampaignView.of(await _load(session, campaign_id))
