"""Persistence of the ladder, member tier state and contributions: the only SQL of tier-svc.

Every function runs inside the caller's transaction and never commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import Row, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tier_svc.domain import (
    Contribution,
    Ladder,
    QualifyingMetric,
    TierState,
    default_ladder,
)
from tier_svc.models import (
    contributions,
    ladder_versions,
    member_tiers,
    order_refunds,
    qualifying_orders,
)

# Handlers and the daily job hold this lock shared while they decide with a ladder; ladder
# writes hold it exclusively, so a tier cannot be removed while a member is moved onto it.
_LADDER_LOCK = "tier-svc:ladder"


@dataclass(frozen=True)
class StoredLadder:
    version: int  # 0 for the built-in default, before ops stored a ladder
    ladder: Ladder


@dataclass(frozen=True)
class QualifyingOrder:
    order_id: str
    member_id: UUID
    purchased_at: datetime
    total_minor: int
    refunded_minor: int


@dataclass(frozen=True)
class NewContribution:
    """A contribution to store, with where it came from (the deduplication key)."""

    member_id: UUID
    metric: QualifyingMetric
    kind: str
    source_id: str
    order_id: str | None
    contribution: Contribution


@dataclass(frozen=True)
class PointsOfOrder:
    """What the points topic said about one order: when its points were first earned."""

    earned_at: datetime
    earned: int
    reversed: int


# ---------- ladder ----------


async def lock_ladder(session: AsyncSession, *, exclusive: bool = False) -> None:
    """Hold the ladder lock until commit: shared to decide with it, exclusive to change it."""
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await session.execute(
        text(f"SELECT {function}(hashtextextended(:key, 0))"), {"key": _LADDER_LOCK}
    )


async def load_ladder(session: AsyncSession, *, for_change: bool = False) -> StoredLadder:
    """The current ladder, locked until commit (exclusively when the caller will change it)."""
    await lock_ladder(session, exclusive=for_change)
    query = select(ladder_versions).order_by(ladder_versions.c.version.desc()).limit(1)
    row = (await session.execute(query)).first()
    if row is None:
        return StoredLadder(0, default_ladder())
    return StoredLadder(int(row.version), Ladder.model_validate(row.definition))


async def save_ladder(
    session: AsyncSession, ladder: Ladder, changed_by: str, at: datetime
) -> StoredLadder:
    """Store a new current version (call after load_ladder(for_change=True))."""
    statement = (
        insert(ladder_versions)
        .values(definition=ladder.model_dump(mode="json"), changed_by=changed_by, changed_at=at)
        .returning(ladder_versions.c.version)
    )
    version = (await session.execute(statement)).scalar_one()
    return StoredLadder(int(version), ladder)


# ---------- member tier state ----------


async def get_state(
    session: AsyncSession, member_id: UUID, *, for_update: bool = False
) -> TierState | None:
    query = select(member_tiers.c.tier_code, member_tiers.c.reached_at).where(
        member_tiers.c.member_id == member_id
    )
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return TierState(tier_code=row.tier_code, reached_at=row.reached_at) if row else None


async def insert_state(
    session: AsyncSession, member_id: UUID, state: TierState, enrolled_by: str, at: datetime
) -> bool:
    """Enrol a member; False if another transaction enrolled them first."""
    statement = (
        pg_insert(member_tiers)
        .values(
            member_id=member_id,
            tier_code=state.tier_code,
            reached_at=state.reached_at,
            enrolled_by=enrolled_by,
            enrolled_at=at,
            updated_at=at,
        )
        .on_conflict_do_nothing(index_elements=[member_tiers.c.member_id])
        .returning(member_tiers.c.member_id)
    )
    return (await session.execute(statement)).first() is not None


async def save_state(
    session: AsyncSession, member_id: UUID, state: TierState, at: datetime
) -> None:
    await session.execute(
        update(member_tiers)
        .where(member_tiers.c.member_id == member_id)
        .values(tier_code=state.tier_code, reached_at=state.reached_at, updated_at=at)
    )


async def members_holding(session: AsyncSession, tier_codes: Sequence[str]) -> dict[str, int]:
    """How many members hold each of `tier_codes` (codes nobody holds are absent)."""
    query = (
        select(member_tiers.c.tier_code, func.count())
        .where(member_tiers.c.tier_code.in_(list(tier_codes)))
        .group_by(member_tiers.c.tier_code)
    )
    return {row[0]: int(row[1]) for row in await session.execute(query)}


async def tier_distribution(session: AsyncSession) -> dict[str, int]:
    query = select(member_tiers.c.tier_code, func.count()).group_by(member_tiers.c.tier_code)
    return {row[0]: int(row[1]) for row in await session.execute(query)}


async def members_to_evaluate(
    session: AsyncSession, after: UUID | None, limit: int
) -> list[tuple[UUID, TierState]]:
    """The next `limit` members in id order after `after`, locked until commit."""
    query = (
        select(member_tiers.c.member_id, member_tiers.c.tier_code, member_tiers.c.reached_at)
        .order_by(member_tiers.c.member_id)
        .limit(limit)
        .with_for_update()
    )
    if after is not None:
        query = query.where(member_tiers.c.member_id > after)
    return [
        (row.member_id, TierState(tier_code=row.tier_code, reached_at=row.reached_at))
        for row in await session.execute(query)
    ]


# ---------- orders and refunds ----------


async def insert_order(session: AsyncSession, order: QualifyingOrder) -> bool:
    """Remember a member purchase; False if this order id was seen before."""
    statement = (
        pg_insert(qualifying_orders)
        .values(
            order_id=order.order_id,
            member_id=order.member_id,
            purchased_at=order.purchased_at,
            total_minor=order.total_minor,
            refunded_minor=order.refunded_minor,
        )
        .on_conflict_do_nothing(index_elements=[qualifying_orders.c.order_id])
        .returning(qualifying_orders.c.order_id)
    )
    return (await session.execute(statement)).first() is not None


def _order(row: Row[Any]) -> QualifyingOrder:
    return QualifyingOrder(
        order_id=row.order_id,
        member_id=row.member_id,
        purchased_at=row.purchased_at,
        total_minor=int(row.total_minor),
        refunded_minor=int(row.refunded_minor),
    )


async def get_order(session: AsyncSession, order_id: str) -> QualifyingOrder | None:
    query = (
        select(qualifying_orders).where(qualifying_orders.c.order_id == order_id).with_for_update()
    )
    row = (await session.execute(query)).first()
    return _order(row) if row is not None else None


async def record_refund(
    session: AsyncSession, order_id: str, refund_id: str, amount_minor: int, at: datetime
) -> bool:
    """Add a refund to its order's refunded total; False if this refund id was applied."""
    statement = (
        pg_insert(order_refunds)
        .values(order_id=order_id, refund_id=refund_id, amount_minor=amount_minor, refunded_at=at)
        .on_conflict_do_nothing(
            index_elements=[order_refunds.c.order_id, order_refunds.c.refund_id]
        )
        .returning(order_refunds.c.refund_id)
    )
    if (await session.execute(statement)).first() is None:
        return False
    await session.execute(
        update(qualifying_orders)
        .where(qualifying_orders.c.order_id == order_id)
        .values(refunded_minor=qualifying_orders.c.refunded_minor + amount_minor)
    )
    return True


# ---------- contributions ----------


async def add_contribution(session: AsyncSession, new: NewContribution, at: datetime) -> bool:
    """Store a contribution; False if one from the same source was stored before."""
    statement = (
        pg_insert(contributions)
        .values(
            member_id=new.member_id,
            metric=new.metric.value,
            kind=new.kind,
            source_id=new.source_id,
            order_id=new.order_id,
            counts_at=new.contribution.counts_at,
            value=new.contribution.value,
            recorded_at=at,
        )
        .on_conflict_do_nothing(
            index_elements=[contributions.c.metric, contributions.c.kind, contributions.c.source_id]
        )
        .returning(contributions.c.id)
    )
    return (await session.execute(statement)).first() is not None


async def member_contributions(
    session: AsyncSession, member_id: UUID, metric: QualifyingMetric, after: datetime
) -> list[Contribution]:
    """A member's contributions to `metric` counting after `after` (the window start)."""
    grouped = await contributions_of_members(session, [member_id], metric, after)
    return grouped.get(member_id, [])


async def contributions_of_members(
    session: AsyncSession, member_ids: Sequence[UUID], metric: QualifyingMetric, after: datetime
) -> dict[UUID, list[Contribution]]:
    query = (
        select(contributions.c.member_id, contributions.c.counts_at, contributions.c.value)
        .where(
            contributions.c.member_id.in_(list(member_ids)),
            contributions.c.metric == metric.value,
            contributions.c.counts_at > after,
        )
        .order_by(contributions.c.member_id, contributions.c.counts_at, contributions.c.id)
    )
    grouped: dict[UUID, list[Contribution]] = defaultdict(list)
    for row in await session.execute(query):
        grouped[row.member_id].append(Contribution(row.counts_at, int(row.value)))
    return dict(grouped)


async def points_of_order(
    session: AsyncSession, member_id: UUID, order_id: str
) -> PointsOfOrder | None:
    """Points earned and reversed so far for one order of a member; None if none was earned."""
    kind = contributions.c.kind
    value = contributions.c.value
    query = select(
        func.min(contributions.c.counts_at).filter(kind == "points_earned"),
        func.coalesce(func.sum(value).filter(kind == "points_earned"), 0),
        func.coalesce(-func.sum(value).filter(kind == "points_reversed"), 0),
    ).where(
        contributions.c.member_id == member_id,
        contributions.c.metric == QualifyingMetric.POINTS.value,
        contributions.c.order_id == order_id,
    )
    earned_at, earned, reversed_ = (await session.execute(query)).one()
    if earned_at is None:
        return None
    return PointsOfOrder(earned_at=earned_at, earned=int(earned), reversed=int(reversed_))


# ---------- the member tier read (hot path: a plain asyncpg connection) ----------

# One statement, so one snapshot: the current ladder, the member's state and the
# contributions inside that ladder's window as two arrays (metric and window_days read
# from the stored definition, the default ladder's when none is stored; 24-hour days, as
# domain.window_start counts them).
_READ_MEMBER_TIER = (
    "SELECT m.member_id, l.definition::text AS definition, m.tier_code, m.reached_at,"
    " c.counts_at, c.value"
    " FROM member_tiers m"
    " LEFT JOIN LATERAL (SELECT definition FROM ladder_versions"
    "   ORDER BY version DESC LIMIT 1) l ON TRUE"
    " CROSS JOIN LATERAL (SELECT array_agg(counts_at ORDER BY counts_at, id) AS counts_at,"
    "     array_agg(value ORDER BY counts_at, id) AS value"
    "   FROM contributions"
    "   WHERE member_id = m.member_id"
    "     AND metric = COALESCE(l.definition->>'metric', $3::text)"
    "     AND counts_at > $2::timestamptz - make_interval("
    "       hours => 24 * COALESCE((l.definition->>'window_days')::int, $4::int))) c"
    " WHERE m.member_id = ANY($1::uuid[])"
)
_parsed_ladders: dict[str, Ladder] = {}
_DEFAULT_LADDER = default_ladder()  # frozen: built once, not on every read


def _ladder_of(definition: str | None) -> Ladder:
    """Stored ladder versions never change: each definition is parsed once per process."""
    if definition is None:
        return _DEFAULT_LADDER
    ladder = _parsed_ladders.get(definition)
    if ladder is None:
        ladder = _parsed_ladders[definition] = Ladder.model_validate_json(definition)
    return ladder


MemberTier = tuple[Ladder, TierState, list[Contribution]]


async def read_member_tiers(
    connection: asyncpg.Connection, member_ids: Sequence[UUID], now: datetime
) -> list[MemberTier | None]:
    """Each member's ladder (the current one), state and contributions inside the
    ladder's window at `now`, in the order of `member_ids`; None for an unknown member.
    One statement, so one snapshot."""
    default = _DEFAULT_LADDER
    rows = await connection.fetch(
        _READ_MEMBER_TIER, member_ids, now, default.metric.value, default.window_days
    )
    found = {row["member_id"]: row for row in rows}
    return [_member_tier(found[member]) if member in found else None for member in member_ids]


def _member_tier(row: asyncpg.Record) -> MemberTier:
    ladder = _ladder_of(row["definition"])
    state = TierState(tier_code=row["tier_code"], reached_at=row["reached_at"])
    counts_at, values = row["counts_at"] or [], row["value"] or []
    items = [Contribution(at, int(value)) for at, value in zip(counts_at, values, strict=True)]
    return ladder, state, items
