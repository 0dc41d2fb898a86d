"""REST API of points-svc under /v1: balance, history, redemptions, adjustments, reconciliation.

Each write is one transaction: the Idempotency-Key record, the account row lock, the
posting and its outbox events commit together or not at all. Business time is the
runtime clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from memberflow_events.envelope import EventPayload, new_event
from memberflow_events.ids import uuid7
from memberflow_events.outbox import add_to_outbox
from memberflow_events.payloads import PointsRedeemed
from memberflow_platform.app import get_runtime, get_session, json_response
from memberflow_platform.auth import (
    MEMBER_SELF,
    OPS,
    STOREFRONT,
    Principal,
    ensure_member_access,
    require,
)
from memberflow_platform.idempotency import idempotency_key, run_once
from memberflow_platform.problems import PROBLEM_JSON, Problem, invalid
from memberflow_platform.runtime import Runtime
from sqlalchemy.ext.asyncio import AsyncSession

from points_svc import domain, points_events, repository, views
from points_svc.domain import InsufficientPoints, PointsError
from points_svc.points_events import SERVICE
from points_svc.reconcile import check_all
from points_svc.schemas import (
    AdjustmentRequest,
    AdjustmentView,
    BalanceView,
    HistoryPage,
    ReconciliationView,
    RedemptionRequest,
    RedemptionView,
    ViolationView,
)
from points_svc.settings import PointsSettings

router = APIRouter(prefix="/v1", tags=["points"])

Session = Annotated[AsyncSession, Depends(get_session)]
AnyCaller = Annotated[Principal, Depends(require(MEMBER_SELF, STOREFRONT, OPS))]
OpsCaller = Annotated[Principal, Depends(require(OPS))]
IdempotencyKey = Annotated[str, Depends(idempotency_key)]

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "insufficient points (problem+json with available, requested)"}
}


def _settings(request: Request) -> PointsSettings:
    settings = get_runtime(request).settings
    assert isinstance(settings, PointsSettings)
    return settings


def _now(request: Request) -> datetime:
    return get_runtime(request).clock()


async def _emit(
    session: AsyncSession, member_id: UUID, now: datetime, payload: EventPayload
) -> None:
    event = new_event(payload, producer=SERVICE, member_id=member_id, occurred_at=now)
    await add_to_outbox(session, [event])


def _insufficient(request: Request, error: InsufficientPoints) -> JSONResponse:
    """409 problem document carrying what is available and what was requested."""
    body: dict[str, Any] = {
        "type": "https://memberflow.dev/problems/insufficient-points",
        "title": "Conflict",
        "status": 409,
        "detail": str(error),
        "instance": request.url.path,
        "available": error.available,
        "requested": error.requested,
        "errors": [{"field": "points", "message": f"only {error.available} available"}],
    }
    return JSONResponse(body, status_code=409, media_type=PROBLEM_JSON)


# ---------- reads ----------


@router.get("/members/{member_id}/balance", response_model=BalanceView)
async def get_balance(member_id: UUID, request: Request, principal: AnyCaller) -> Response:
    """Available, pending, debt, expiring soon (by UTC date) and lifetime totals.

    A member without an account (nothing earned yet) has a balance of zero.
    """
    ensure_member_access(principal, member_id)
    runtime = get_runtime(request)
    reads = runtime.read_batcher("balance", partial(_read_balances, runtime))
    balance, now = await reads.read(member_id)
    # Serialised here, once: FastAPI would validate the view again against response_model
    # (which still documents the body in the OpenAPI).
    return json_response(views.balance_view(member_id, balance, now))


async def _read_balances(
    runtime: Runtime, connection: asyncpg.Connection, member_ids: list[UUID]
) -> list[tuple[domain.Balance, datetime]]:
    """The balances of members whose reads wait together (a ReadBatcher), at one time."""
    now = runtime.clock()
    settings = runtime.settings
    assert isinstance(settings, PointsSettings)
    soon_days = settings.points_expiring_soon_days
    horizon = now + timedelta(days=soon_days)
    accounts = await repository.read_balance_accounts(connection, member_ids, now, horizon)
    return [
        (domain.balance(account or domain.Account(), now, soon_days), now) for account in accounts
    ]


@router.get("/members/{member_id}/history", response_model=HistoryPage)
async def get_history(
    member_id: UUID,
    session: Session,
    principal: AnyCaller,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> HistoryPage:
    """Ledger entries, newest first, each with its cause."""
    ensure_member_access(principal, member_id)
    try:
        before = views.decode_cursor(cursor) if cursor else None
    except views.InvalidCursor as error:
        raise invalid("cursor", str(error)) from None
    rows = await repository.history_page(session, member_id, before, limit + 1)
    page = rows[:limit]
    next_cursor = views.encode_cursor(page[-1].entry_id) if len(rows) > limit else None
    return HistoryPage(
        items=[views.history_entry_view(row) for row in page], next_cursor=next_cursor
    )


# ---------- writes ----------


@router.post(
    "/members/{member_id}/redemptions",
    status_code=201,
    response_model=RedemptionView,
    responses=_CONFLICT,
)
async def redeem(
    member_id: UUID,
    body: RedemptionRequest,
    request: Request,
    session: Session,
    principal: AnyCaller,
    key: IdempotencyKey,
) -> JSONResponse:
    """Spend available points, soonest-expiring lots first; never overdraws."""
    ensure_member_access(principal, member_id)
    now = _now(request)

    async def action() -> tuple[int, dict[str, Any]]:
        loaded = await repository.lock_account(session, member_id)
        redemption_id = uuid7()
        posting = domain.redeem(loaded.account, body.points, now, reference=str(redemption_id))
        await repository.write_posting(session, member_id, posting)
        await repository.insert_redemption(
            session, redemption_id, member_id, body.points, body.reference, now
        )
        after = points_events.balance_after(posting.account, now)
        await _emit(
            session,
            member_id,
            now,
            PointsRedeemed(
                redemption_id=redemption_id,
                points=body.points,
                reference=body.reference,
                balance_after=after,
            ),
        )
        view = RedemptionView(
            redemption_id=redemption_id,
            points=body.points,
            reference=body.reference,
            balance_after=after,
        )
        return 201, view.model_dump(mode="json")

    try:
        async with session.begin():
            status, response = await run_once(
                session,
                scope=f"points-svc:redemptions:{member_id}",
                key=key,
                request_body=body.model_dump(mode="json"),
                action=action,
            )
    except InsufficientPoints as error:
        return _insufficient(request, error)
    return JSONResponse(response, status_code=status)


@router.post("/members/{member_id}/adjustments", status_code=201, response_model=AdjustmentView)
async def adjust(
    member_id: UUID,
    body: AdjustmentRequest,
    request: Request,
    session: Session,
    principal: OpsCaller,
    key: IdempotencyKey,
) -> JSONResponse:
    """An ops correction (+ credit, − debit that may record debt), attributed to the caller."""
    now = _now(request)
    rules = _settings(request).earning_rules()

    async def action() -> tuple[int, dict[str, Any]]:
        loaded = await repository.lock_account(session, member_id)
        lot_id = uuid7()
        posting = domain.adjust(
            loaded.account,
            body.points,
            actor=principal.subject,
            reason=body.reason,
            lot_id=lot_id,
            now=now,
            rules=rules,
        )
        await repository.write_posting(session, member_id, posting)
        entry = posting.entries[0]
        await _emit(session, member_id, now, points_events.adjusted(entry, posting.account, now))
        view = AdjustmentView(
            points=entry.points,
            actor=principal.subject,
            reason=body.reason,
            lot_id=lot_id if body.points > 0 else None,
            debt_change=entry.debt_change,
            balance_after=points_events.balance_after(posting.account, now),
        )
        return 201, view.model_dump(mode="json")

    try:
        async with session.begin():
            status, response = await run_once(
                session,
                scope=f"points-svc:adjustments:{member_id}",
                key=key,
                request_body=body.model_dump(mode="json"),
                action=action,
            )
    except PointsError as error:
        raise Problem(
            422,
            str(error),
            code="validation-error",
            errors=[{"field": "points", "message": str(error)}],
        ) from None
    return JSONResponse(response, status_code=status)


# ---------- ops ----------


@router.get("/ops/reconciliation", response_model=ReconciliationView)
async def reconciliation(request: Request, _: OpsCaller) -> ReconciliationView:
    """Every account whose entries, lots and debt disagree; empty when the books balance."""
    found = await check_all(get_runtime(request).sessions)
    return ReconciliationView(
        accounts_with_violations=len(found),
        violations=[
            ViolationView(member_id=account.member_id, rule=v.rule, detail=v.detail)
            for account in found
            for v in account.violations
        ],
    )
