"""Persistence of campaigns, the member projection, exposures and coupons.

The only module of campaign-svc that writes SQL. Every function runs inside the caller's
transaction and never commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import (
    Row,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaign_svc.domain import (
    CampaignDefinition,
    Channel,
    Coupon,
    CouponTerms,
    MemberProjection,
)
from campaign_svc.models import campaigns, counted_orders, coupons, exposures, member_projections

CampaignStatus = Literal["active", "paused", "ended"]
MemberStatus = Literal["unknown", "registered", "erased"]


# ---------- campaigns ----------


@dataclass(frozen=True)
class StoredCampaign:
    definition: CampaignDefinition
    status: CampaignStatus
    budget_spent: int
    blast_done_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def campaign_id(self) -> UUID:
        return self.definition.campaign_id


def _campaign(row: Row[Any]) -> StoredCampaign:
    return StoredCampaign(
        definition=CampaignDefinition.model_validate(row.definition),
        status=row.status,
        budget_spent=int(row.budget_spent),
        blast_done_at=row.blast_done_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _definition_columns(definition: CampaignDefinition) -> dict[str, Any]:
    budget = definition.controls.budget
    return {
        "name": definition.name,
        "trigger_kind": definition.trigger.kind,
        "definition": definition.model_dump(mode="json"),
        "budget_limit": budget.limit if budget else None,
    }


async def insert_campaign(
    session: AsyncSession, definition: CampaignDefinition, now: datetime
) -> bool:
    """False when a campaign with this id already exists."""
    statement = (
        pg_insert(campaigns)
        .values(
            id=definition.campaign_id,
            status="active",
            budget_spent=0,
            created_at=now,
            updated_at=now,
            **_definition_columns(definition),
        )
        .on_conflict_do_nothing(index_elements=[campaigns.c.id])
        .returning(campaigns.c.id)
    )
    return (await session.execute(statement)).first() is not None


async def get_campaign(
    session: AsyncSession, campaign_id: UUID, *, for_update: bool = False
) -> StoredCampaign | None:
    query = select(campaigns).where(campaigns.c.id == campaign_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return _campaign(row) if row is not None else None


async def list_campaigns(
    session: AsyncSession,
    *,
    status: CampaignStatus | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[StoredCampaign]:
    """Campaigns in creation order, strictly after the (created_at, id) position."""
    query = select(campaigns).order_by(campaigns.c.created_at, campaigns.c.id).limit(limit)
    if status is not None:
        query = query.where(campaigns.c.status == status)
    if after is not None:
        query = query.where(tuple_(campaigns.c.created_at, campaigns.c.id) > tuple_(*after))
    return [_campaign(row) for row in await session.execute(query)]


async def update_campaign(
    session: AsyncSession,
    definition: CampaignDefinition,
    status: CampaignStatus,
    now: datetime,
) -> None:
    await session.execute(
        update(campaigns)
        .where(campaigns.c.id == definition.campaign_id)
        .values(status=status, updated_at=now, **_definition_columns(definition))
    )


async def active_campaigns(session: AsyncSession, trigger_kind: str) -> list[StoredCampaign]:
    query = (
        select(campaigns)
        .where(campaigns.c.status == "active", campaigns.c.trigger_kind == trigger_kind)
        .order_by(campaigns.c.created_at, campaigns.c.id)
    )
    return [_campaign(row) for row in await session.execute(query)]


async def pending_blasts(session: AsyncSession) -> list[StoredCampaign]:
    """Active blasts not yet sent (the caller checks send_at with the domain)."""
    query = select(campaigns).where(
        campaigns.c.status == "active",
        campaigns.c.trigger_kind == "blast",
        campaigns.c.blast_done_at.is_(None),
    )
    return [_campaign(row) for row in await session.execute(query)]


async def mark_blast_done(session: AsyncSession, campaign_id: UUID, now: datetime) -> None:
    await session.execute(
        update(campaigns).where(campaigns.c.id == campaign_id).values(blast_done_at=now)
    )


async def spend_budget(session: AsyncSession, campaign_id: UUID, cost: int) -> bool:
    """Take `cost` from the campaign's budget if all of it fits; concurrent spenders queue.

    The conditional UPDATE locks the campaign row; a transaction waiting on it re-reads
    the new `budget_spent`, so the limit holds exactly under any concurrency.
    """
    statement = (
        update(campaigns)
        .where(
            campaigns.c.id == campaign_id,
            or_(
                campaigns.c.budget_limit.is_(None),
                campaigns.c.budget_spent + cost <= campaigns.c.budget_limit,
            ),
        )
        .values(budget_spent=campaigns.c.budget_spent + cost)
        .returning(campaigns.c.id)
    )
    return (await session.execute(statement)).first() is not None


async def budget_spent(session: AsyncSession, campaign_id: UUID) -> int:
    spent = await session.scalar(
        select(campaigns.c.budget_spent).where(campaigns.c.id == campaign_id)
    )
    return int(spent or 0)


@dataclass(frozen=True)
class CampaignStats:
    exposures: dict[str, int]
    coupons: dict[str, int]


async def campaign_stats(session: AsyncSession, campaign_id: UUID, now: datetime) -> CampaignStats:
    groups = await session.execute(
        select(exposures.c.grp, func.count())
        .where(exposures.c.campaign_id == campaign_id)
        .group_by(exposures.c.grp)
    )
    effective = _effective_status(now)
    statuses = await session.execute(
        select(effective, func.count())
        .where(coupons.c.campaign_id == campaign_id)
        .group_by(effective)
    )
    counted_groups = {"treatment": 0, "control": 0} | {g: int(n) for g, n in groups}
    counted_coupons = {"issued": 0, "redeemed": 0, "expired": 0, "voided": 0}
    for status, count in statuses:
        counted_coupons[status] = int(count)
    return CampaignStats(exposures=counted_groups, coupons=counted_coupons)


def _effective_status(now: datetime) -> Any:
    """An issued coupon past its validity counts as expired before the job marks it."""
    return case(
        (and_(coupons.c.status == "issued", coupons.c.valid_until <= now), "expired"),
        else_=coupons.c.status,
    )


# ---------- the member projection ----------


def _member(row: Row[Any]) -> MemberProjection:
    return MemberProjection(
        member_id=row.member_id,
        birth_month=row.birth_month,
        birth_day=row.birth_day,
        time_zone=row.time_zone,
        consents=dict(row.consents),
        tier=row.tier,
        rfm_segment=row.rfm_segment,
        attributes=dict(row.attributes),
        purchase_count=row.purchase_count,
    )


async def get_member(session: AsyncSession, member_id: UUID) -> MemberProjection | None:
    """The member as campaigns see it; None when unknown or erased (never targeted again)."""
    query = select(member_projections).where(
        member_projections.c.member_id == member_id, member_projections.c.erased_at.is_(None)
    )
    row = (await session.execute(query)).first()
    return _member(row) if row is not None else None


async def member_status(session: AsyncSession, member_id: UUID) -> MemberStatus:
    """unknown (no member.registered seen yet), registered, or erased."""
    row = (
        await session.execute(
            select(member_projections.c.registered_at, member_projections.c.erased_at).where(
                member_projections.c.member_id == member_id
            )
        )
    ).first()
    if row is not None and row.erased_at is not None:
        return "erased"
    if row is None or row.registered_at is None:
        return "unknown"
    return "registered"


async def _ensure_member(session: AsyncSession, member_id: UUID, now: datetime) -> None:
    """A projection row for a member first seen through another topic's event."""
    await session.execute(
        pg_insert(member_projections)
        .values(member_id=member_id, updated_at=now)
        .on_conflict_do_nothing(index_elements=[member_projections.c.member_id])
    )


async def _update_member(
    session: AsyncSession, member_id: UUID, now: datetime, values: Mapping[str, Any]
) -> None:
    """Change a live projection; an erased member's row is never written again."""
    await _ensure_member(session, member_id, now)
    await session.execute(
        update(member_projections)
        .where(
            member_projections.c.member_id == member_id, member_projections.c.erased_at.is_(None)
        )
        .values(updated_at=now, **values)
    )


async def project_registration(
    session: AsyncSession,
    member_id: UUID,
    now: datetime,
    *,
    birth_month: int | None,
    birth_day: int | None,
    time_zone: str,
    consents: Mapping[Channel, bool],
    attributes: Mapping[str, str],
) -> None:
    await _update_member(
        session,
        member_id,
        now,
        {
            "birth_month": birth_month,
            "birth_day": birth_day,
            "time_zone": time_zone,
            "consents": dict(consents),
            "attributes": dict(attributes),
            "registered_at": func.coalesce(member_projections.c.registered_at, now),
        },
    )


async def project_update(
    session: AsyncSession,
    member_id: UUID,
    now: datetime,
    changes: Mapping[str, Any],
    consents: Mapping[Channel, bool] | None,
) -> None:
    """Apply the fields a member.updated carries; consents merge channel by channel."""
    values = dict(changes)
    if consents is not None:
        patch = bindparam("consents_patch", dict(consents), type_=JSONB)
        values["consents"] = member_projections.c.consents.op("||")(patch)
    await _update_member(session, member_id, now, values)


async def project_tier(session: AsyncSession, member_id: UUID, tier: str, now: datetime) -> None:
    await _update_member(session, member_id, now, {"tier": tier})


async def project_segment(
    session: AsyncSession, member_id: UUID, segment: str, now: datetime
) -> None:
    await _update_member(session, member_id, now, {"rfm_segment": segment})


async def count_purchase(
    session: AsyncSession, member_id: UUID, order_id: str, now: datetime
) -> bool:
    """Count an order once per member; False when it was already counted."""
    inserted = await session.execute(
        pg_insert(counted_orders)
        .values(member_id=member_id, order_id=order_id)
        .on_conflict_do_nothing()
        .returning(counted_orders.c.order_id)
    )
    if inserted.first() is None:
        return False
    await _update_member(
        session, member_id, now, {"purchase_count": member_projections.c.purchase_count + 1}
    )
    return True


async def erase_member(session: AsyncSession, member_id: UUID, now: datetime) -> None:
    """Forget everything projected about the member and stop targeting them."""
    await _ensure_member(session, member_id, now)
    await session.execute(
        update(member_projections)
        .where(member_projections.c.member_id == member_id)
        .values(
            birth_month=None,
            birth_day=None,
            time_zone="UTC",
            consents={},
            attributes={},
            tier=None,
            rfm_segment=None,
            erased_at=func.coalesce(member_projections.c.erased_at, now),
            updated_at=now,
        )
    )
    await session.execute(counted_orders.delete().where(counted_orders.c.member_id == member_id))


async def members_born_on(
    session: AsyncSession, days: Iterable[tuple[int, int]]
) -> list[MemberProjection]:
    """Live members whose birthday (month, day) is one of `days`."""
    wanted = sorted(set(days))
    if not wanted:
        return []
    query = (
        select(member_projections)
        .where(
            member_projections.c.erased_at.is_(None),
            tuple_(member_projections.c.birth_month, member_projections.c.birth_day).in_(wanted),
        )
        .order_by(member_projections.c.member_id)
    )
    return [_member(row) for row in await session.execute(query)]


async def members_page(
    session: AsyncSession, after: UUID | None, limit: int
) -> list[MemberProjection]:
    """Live members in id order, strictly after `after` (the blast walks all of them)."""
    query = (
        select(member_projections)
        .where(member_projections.c.erased_at.is_(None))
        .order_by(member_projections.c.member_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(member_projections.c.member_id > after)
    return [_member(row) for row in await session.execute(query)]


# ---------- exposures ----------


async def lock_member_in_campaign(
    session: AsyncSession, campaign_id: UUID, member_id: UUID
) -> None:
    """Serialise decisions for one member in one campaign (frequency cap, occasion)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"campaign-svc:exposure:{campaign_id}:{member_id}"},
    )


async def occasion_used(
    session: AsyncSession, campaign_id: UUID, member_id: UUID, occasion: str
) -> bool:
    found = await session.scalar(
        select(exposures.c.id).where(
            exposures.c.campaign_id == campaign_id,
            exposures.c.member_id == member_id,
            exposures.c.occasion_key == occasion,
        )
    )
    return found is not None


async def exposure_times(
    session: AsyncSession, campaign_id: UUID, member_id: UUID, since: datetime
) -> tuple[datetime, ...]:
    """The member's exposures to the campaign after `since` (both groups)."""
    rows = await session.scalars(
        select(exposures.c.exposed_at).where(
            exposures.c.campaign_id == campaign_id,
            exposures.c.member_id == member_id,
            exposures.c.exposed_at > since,
        )
    )
    return tuple(rows)


async def record_exposure(
    session: AsyncSession,
    *,
    exposure_id: UUID,
    campaign_id: UUID,
    member_id: UUID,
    group: str,
    occasion: str,
    now: datetime,
    cost: int,
) -> None:
    await session.execute(
        insert(exposures).values(
            id=exposure_id,
            campaign_id=campaign_id,
            member_id=member_id,
            grp=group,
            occasion_key=occasion,
            exposed_at=now,
            budget_cost=cost,
        )
    )


# ---------- coupons ----------


@dataclass(frozen=True)
class StoredCoupon:
    coupon: Coupon
    issued_at: datetime
    redeemed_at: datetime | None
    order_id: str | None
    discount_minor: int | None


def _coupon(row: Row[Any]) -> StoredCoupon:
    return StoredCoupon(
        coupon=Coupon(
            coupon_id=row.id,
            campaign_id=row.campaign_id,
            member_id=row.member_id,
            code=row.code,
            terms=CouponTerms.model_validate(row.terms),
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            status=row.status,
        ),
        issued_at=row.issued_at,
        redeemed_at=row.redeemed_at,
        order_id=row.order_id,
        discount_minor=row.discount_minor,
    )


async def insert_coupon(session: AsyncSession, coupon: Coupon, now: datetime) -> bool:
    """False when the code is taken (the caller draws another)."""
    statement = (
        pg_insert(coupons)
        .values(
            id=coupon.coupon_id,
            campaign_id=coupon.campaign_id,
            member_id=coupon.member_id,
            code=coupon.code,
            terms=coupon.terms.model_dump(mode="json"),
            status=coupon.status,
            valid_from=coupon.valid_from,
            valid_until=coupon.valid_until,
            issued_at=now,
        )
        .on_conflict_do_nothing(index_elements=[coupons.c.code])
        .returning(coupons.c.id)
    )
    return (await session.execute(statement)).first() is not None


async def coupon_by_code(
    session: AsyncSession, code: str, *, for_update: bool = False
) -> StoredCoupon | None:
    """`code` must be in normal form (domain.normalize_coupon_code)."""
    query = select(coupons).where(coupons.c.code == code)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return _coupon(row) if row is not None else None


async def coupons_of_member(
    session: AsyncSession,
    member_id: UUID,
    *,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[StoredCoupon]:
    query = (
        select(coupons)
        .where(coupons.c.member_id == member_id)
        .order_by(coupons.c.issued_at, coupons.c.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(coupons.c.issued_at, coupons.c.id) > tuple_(*after))
    return [_coupon(row) for row in await session.execute(query)]


async def mark_redeemed(
    session: AsyncSession,
    coupon_id: UUID,
    now: datetime,
    order_id: str | None,
    discount_minor: int,
) -> None:
    await session.execute(
        update(coupons)
        .where(coupons.c.id == coupon_id)
        .values(
            status="redeemed", redeemed_at=now, order_id=order_id, discount_minor=discount_minor
        )
    )


async def expire_coupons(session: AsyncSession, now: datetime) -> int:
    """Mark issued coupons past their validity as expired; how many changed."""
    result = await session.execute(
        update(coupons)
        .where(coupons.c.status == "issued", coupons.c.valid_until <= now)
        .values(status="expired")
        .returning(coupons.c.id)
    )
    return len(result.all())
