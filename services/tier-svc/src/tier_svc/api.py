"""REST API of tier-svc under /v1: a member's tier and progress; ops CRUD of the ladder.

Ladder writes take the ladder lock exclusively, so no event handler or daily evaluation
decides with a ladder that is being replaced, and a tier cannot be removed while a member
is being moved onto it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Request, Response
from memberflow_platform.app import get_runtime, get_session, json_response
from memberflow_platform.auth import (
    MEMBER_SELF,
    OPS,
    STOREFRONT,
    Principal,
    ensure_member_access,
    require,
)
from memberflow_platform.problems import Problem, conflict, invalid, not_found
from memberflow_platform.runtime import Runtime
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tier_svc import repository
from tier_svc.domain import (
    Ladder,
    TierDefinition,
    UnknownTierError,
    describe_progress,
    progress,
)
from tier_svc.repository import StoredLadder
from tier_svc.schemas import (
    DistributionView,
    LadderRequest,
    LadderView,
    MemberTierView,
    TierCount,
    TierPatch,
)

router = APIRouter(prefix="/v1", tags=["tiers"])

Session = Annotated[AsyncSession, Depends(get_session)]
AnyCaller = Annotated[Principal, Depends(require(MEMBER_SELF, STOREFRONT, OPS))]
Operator = Annotated[Principal, Depends(require(OPS))]

# The domain's ladder rules name their field first: "tiers[gold].threshold: must be ...".
_RULE_MESSAGE = re.compile(r"^(?:Value error, )?(tiers(?:\.\w+|\[\w+\]\.\w+)?): (.+)$", re.DOTALL)


def _now(request: Request) -> datetime:
    return get_runtime(request).clock()


# ---------- member tier ----------


@router.get("/members/{member_id}/tier", response_model=MemberTierView)
async def read_member_tier(member_id: UUID, request: Request, principal: AnyCaller) -> Response:
    """The member's tier, benefits, protection, progress to the next tier, downgrade risk."""
    ensure_member_access(principal, member_id)
    runtime = get_runtime(request)
    found, now = await runtime.read_batcher("tier", partial(_read_tiers, runtime)).read(member_id)
    if found is None:
        raise not_found(f"member {member_id}")
    ladder, state, items = found
    standing = progress(state, items, ladder, now)
    tier = ladder.tier(state.tier_code)
    # Serialised here, once: FastAPI would validate the view again against response_model
    # (which still documents the body in the OpenAPI).
    view = MemberTierView(
        member_id=member_id,
        tier=tier.code,
        name=tier.name,
        multiplier=tier.multiplier,
        perks=list(tier.perks),
        reached_at=state.reached_at,
        metric=standing.metric,
        qualifying_value=standing.qualifying_value,
        protected_until=standing.protected_until,
        next_tier=standing.next_tier,
        amount_needed=standing.amount_needed,
        needed_by=standing.needed_by,
        within_days=standing.within_days,
        progress_text=describe_progress(standing, ladder),
        downgrade_to=standing.downgrade_to,
        amount_to_keep=standing.amount_to_keep,
    )
    return json_response(view)


async def _read_tiers(
    runtime: Runtime, connection: asyncpg.Connection, member_ids: list[UUID]
) -> list[tuple[repository.MemberTier | None, datetime]]:
    """The tiers of members whose reads wait together (a ReadBatcher), at one time."""
    now = runtime.clock()
    found = await repository.read_member_tiers(connection, member_ids, now)
    return [(member, now) for member in found]


# ---------- ladder (ops) ----------


def _view(stored: StoredLadder) -> LadderView:
    ladder = stored.ladder
    return LadderView(
        version=stored.version,
        metric=ladder.metric,
        window_days=ladder.window_days,
        protection_days=ladder.protection_days,
        minor_digits=ladder.minor_digits,
        revoke_on_refund=ladder.revoke_on_refund,
        tiers=list(ladder.tiers),
    )


def validation_problem(error: ValidationError) -> Problem:
    """422 naming each field at fault, the domain's own field names kept."""
    errors: list[dict[str, Any]] = []
    for item in error.errors():
        match = _RULE_MESSAGE.match(str(item["msg"]))
        if match:
            field, message = match.group(1), match.group(2)
        else:
            field = ".".join(str(part) for part in item["loc"]) or "body"
            message = str(item["msg"])
        errors.append({"field": field, "message": message})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return Problem(422, detail, code="validation-error", errors=errors)


def _validated_ladder(fields: dict[str, Any]) -> Ladder:
    try:
        return Ladder.model_validate(fields)
    except ValidationError as error:
        raise validation_problem(error) from None


def _with_tiers(ladder: Ladder, tiers: Sequence[TierDefinition]) -> Ladder:
    return _validated_ladder({**ladder.model_dump(exclude={"tiers"}), "tiers": list(tiers)})


def _tier_of(ladder: Ladder, code: str) -> TierDefinition:
    try:
        return ladder.tier(code)
    except UnknownTierError:
        raise not_found(f"tier {code}") from None


async def _refuse_removing_held_tiers(session: AsyncSession, before: Ladder, after: Ladder) -> None:
    """409 if the new ladder drops a tier members still hold (they would have no tier)."""
    kept = {tier.code for tier in after.tiers}
    removed = [tier.code for tier in before.tiers if tier.code not in kept]
    held = await repository.members_holding(session, removed) if removed else {}
    if held:
        summary = ", ".join(f"{code} ({count} members)" for code, count in sorted(held.items()))
        raise Problem(
            409,
            f"tiers: members still hold {summary}; keep the tier or wait until they have moved",
            code="tier-in-use",
            errors=[{"field": "tiers", "message": f"members still hold {summary}"}],
        )


async def _store(
    session: AsyncSession, before: Ladder, after: Ladder, principal: Principal, now: datetime
) -> StoredLadder:
    await _refuse_removing_held_tiers(session, before, after)
    return await repository.save_ladder(session, after, principal.subject, now)


@router.get("/tiers", response_model=LadderView)
async def read_ladder(session: Session, _: Operator) -> LadderView:
    """The current ladder (version 0 = the built-in default)."""
    async with session.begin():
        return _view(await repository.load_ladder(session))


@router.put("/tiers", response_model=LadderView)
async def replace_ladder(
    body: LadderRequest, request: Request, session: Session, principal: Operator
) -> LadderView:
    """Replace the whole ladder; members are re-evaluated by the daily job, not at once."""
    new = _validated_ladder(body.model_dump())
    async with session.begin():
        current = await repository.load_ladder(session, for_change=True)
        stored = await _store(session, current.ladder, new, principal, _now(request))
    return _view(stored)


@router.post("/tiers", response_model=TierDefinition, status_code=201)
async def add_tier(
    body: TierDefinition,
    request: Request,
    response: Response,
    session: Session,
    principal: Operator,
) -> TierDefinition:
    """Add one tier to the ladder (409 if its code exists)."""
    async with session.begin():
        current = await repository.load_ladder(session, for_change=True)
        if any(tier.code == body.code for tier in current.ladder.tiers):
            raise conflict(f"code: tier {body.code} already exists", code="tier-exists")
        new = _with_tiers(current.ladder, [*current.ladder.tiers, body])
        await _store(session, current.ladder, new, principal, _now(request))
    response.headers["Location"] = f"/v1/tiers/{body.code}"
    return body


@router.get("/tiers/distribution", response_model=DistributionView)
async def read_distribution(session: Session, _: Operator) -> DistributionView:
    """How many members hold each tier of the ladder."""
    async with session.begin():
        ladder = (await repository.load_ladder(session)).ladder
        counts = await repository.tier_distribution(session)
    tiers = [
        TierCount(code=tier.code, name=tier.name, members=counts.get(tier.code, 0))
        for tier in ladder.tiers
    ]
    return DistributionView(total=sum(counts.values()), tiers=tiers)


@router.get("/tiers/{code}", response_model=TierDefinition)
async def read_tier(code: str, session: Session, _: Operator) -> TierDefinition:
    async with session.begin():
        return _tier_of((await repository.load_ladder(session)).ladder, code)


@router.patch("/tiers/{code}", response_model=TierDefinition)
async def change_tier(
    code: str, body: TierPatch, request: Request, session: Session, principal: Operator
) -> TierDefinition:
    """Change a tier's name, multiplier, perks or threshold.

    No tier.changed is emitted for members holding the tier: the new multiplier reaches
    points-svc with their next tier change (see docs/api/tier-svc.md).
    """
    changes = body.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None:
            raise invalid(field, "must not be null; leave it out to keep the current value")
    async with session.begin():
        current = await repository.load_ladder(session, for_change=True)
        tier = _tier_of(current.ladder, code)
        try:
            changed = TierDefinition.model_validate({**tier.model_dump(), **changes})
        except ValidationError as error:
            raise validation_problem(error) from None
        tiers = [changed if t.code == code else t for t in current.ladder.tiers]
        new = _with_tiers(current.ladder, tiers)
        await _store(session, current.ladder, new, principal, _now(request))
    return changed


@router.delete("/tiers/{code}", status_code=204)
async def delete_tier(
    code: str, request: Request, session: Session, principal: Operator
) -> Response:
    """Remove a tier nobody holds (409 while members hold it)."""
    async with session.begin():
        current = await repository.load_ladder(session, for_change=True)
        _tier_of(current.ladder, code)
        held = (await repository.members_holding(session, [code])).get(code, 0)
        if held:
            raise conflict(f"tier {code} is held by {held} members", code="tier-in-use")
        new = _with_tiers(current.ladder, [t for t in current.ladder.tiers if t.code != code])
        await _store(session, current.ladder, new, principal, _now(request))
    return Response(status_code=204)
