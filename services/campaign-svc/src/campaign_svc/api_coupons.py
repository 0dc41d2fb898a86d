"""Coupon REST: a member's coupons, validation against a basket, idempotent redemption.

Refusals (docs/api/campaign-svc.md): not_owner → 403; voided, already_redeemed, expired,
not_yet_valid → 409; currency_mismatch, below_minimum_spend → 422 naming the field.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from memberflow_events.envelope import new_event
from memberflow_events.outbox import add_to_outbox
from memberflow_events.payloads import CouponRedeemed
from memberflow_platform.app import get_runtime, get_session
from memberflow_platform.auth import (
    MEMBER_SELF,
    OPS,
    STOREFRONT,
    Principal,
    ensure_member_access,
    require,
)
from memberflow_platform.idempotency import idempotency_key, run_once
from memberflow_platform.problems import Problem, invalid, not_found
from sqlalchemy.ext.asyncio import AsyncSession

from campaign_svc import domain, repository
from campaign_svc.domain import CouponRefusal
from campaign_svc.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, decode_cursor, encode_cursor
from campaign_svc.repository import StoredCoupon
from campaign_svc.schemas import (
    BasketRequest,
    CouponPage,
    CouponView,
    DiscountView,
    RedeemRequest,
    RedemptionView,
    ValidationResult,
)

router = APIRouter(prefix="/v1", tags=["coupons"])

SERVICE = "campaign-svc"
REDEEM_SCOPE = "campaign-svc:coupon-redeem"

Session = Annotated[AsyncSession, Depends(get_session)]
Reader = Annotated[Principal, Depends(require(MEMBER_SELF, STOREFRONT, OPS))]
Shopper = Annotated[Principal, Depends(require(MEMBER_SELF, STOREFRONT))]

_REFUSAL_STATUS = {
    CouponRefusal.NOT_OWNER: 403,
    CouponRefusal.VOIDED: 409,
    CouponRefusal.ALREADY_REDEEMED: 409,
    CouponRefusal.EXPIRED: 409,
    CouponRefusal.NOT_YET_VALID: 409,
    CouponRefusal.CURRENCY_MISMATCH: 422,
    CouponRefusal.BELOW_MINIMUM_SPEND: 422,
}
_REFUSAL_FIELD = {
    CouponRefusal.CURRENCY_MISMATCH: "currency",
    CouponRefusal.BELOW_MINIMUM_SPEND: "basket_total_minor",
}
_REFUSAL_TEXT = {
    CouponRefusal.NOT_OWNER: "the coupon belongs to another member",
    CouponRefusal.VOIDED: "the coupon was voided",
    CouponRefusal.ALREADY_REDEEMED: "the coupon was already redeemed",
    CouponRefusal.EXPIRED: "the coupon has expired",
    CouponRefusal.NOT_YET_VALID: "the coupon is not valid yet",
    CouponRefusal.CURRENCY_MISMATCH: "the basket's currency differs from the coupon's",
    CouponRefusal.BELOW_MINIMUM_SPEND: "the basket is below the coupon's minimum spend",
}


def _now(request: Request) -> datetime:
    return get_runtime(request).clock()


def refusal_problem(reason: CouponRefusal) -> Problem:
    """A refusal as a problem document whose code is the refusal reason."""
    field = _REFUSAL_FIELD.get(reason, "code")
    return Problem(
        _REFUSAL_STATUS[reason],
        f"{reason.value}: {_REFUSAL_TEXT[reason]}",
        code=reason.value,
        errors=[{"field": field, "message": reason.value}],
    )


@router.get("/members/{member_id}/coupons")
async def list_member_coupons(
    member_id: UUID,
    request: Request,
    session: Session,
    principal: Reader,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> CouponPage:
    """The member's coupons in issue order (a member token: only its own)."""
    ensure_member_access(principal, member_id)
    after = decode_cursor(cursor)
    async with session.begin():
        found = await repository.coupons_of_member(session, member_id, after=after, limit=limit)
    now = _now(request)
    last = found[-1] if len(found) == limit else None
    return CouponPage(
        items=[CouponView.of(c, now) for c in found],
        next_cursor=encode_cursor((last.issued_at, last.coupon.coupon_id)) if last else None,
    )


async def _find(
    session: AsyncSession, text: str, *, for_update: bool = False
) -> StoredCoupon | None:
    code = domain.normalize_coupon_code(text)
    if code is None:
        return None
    return await repository.coupon_by_code(session, code, for_update=for_update)


@router.post("/coupons/validate")
async def validate_coupon(
    body: BasketRequest, request: Request, session: Session, principal: Shopper
) -> ValidationResult:
    """Would this coupon apply to this basket now, and for how much? Changes nothing.

    Reasons when not valid: malformed_code, unknown_code, or a redemption refusal.
    """
    ensure_member_access(principal, body.member_id)
    if domain.normalize_coupon_code(body.code) is None:
        return ValidationResult(valid=False, reason="malformed_code")
    async with session.begin():
        stored = await _find(session, body.code)
    if stored is None:
        return ValidationResult(valid=False, reason="unknown_code")
    coupon = stored.coupon
    refusal = domain.check_redeemable(
        coupon, body.member_id, body.basket_total_minor, _now(request), body.currency
    )
    if refusal is not None:
        owned = refusal is not CouponRefusal.NOT_OWNER
        return ValidationResult(
            valid=False, reason=refusal.value, coupon_id=coupon.coupon_id if owned else None
        )
    discount = domain.compute_discount(coupon.terms, body.basket_total_minor, body.shipping_minor)
    return ValidationResult(
        valid=True, coupon_id=coupon.coupon_id, discount=DiscountView.of(discount)
    )


async def _redeem(
    session: AsyncSession, body: RedeemRequest, now: datetime
) -> tuple[int, dict[str, Any]]:
    if domain.normalize_coupon_code(body.code) is None:
        raise invalid("code", "not a coupon code (check the characters)")
    stored = await _find(session, body.code, for_update=True)  # serialises redemptions
    if stored is None:
        raise not_found("coupon")
    coupon = stored.coupon
    refusal = domain.check_redeemable(
        coupon, body.member_id, body.basket_total_minor, now, body.currency
    )
    if refusal is not None:
        raise refusal_problem(refusal)
    discount = domain.compute_discount(coupon.terms, body.basket_total_minor, body.shipping_minor)
    await repository.mark_redeemed(
        session, coupon.coupon_id, now, body.order_id, discount.total_minor
    )
    redeemed = CouponRedeemed(
        coupon_id=coupon.coupon_id,
        campaign_id=coupon.campaign_id,
        order_id=body.order_id,
        discount_minor=discount.total_minor,
    )
    await add_to_outbox(
        session,
        [new_event(redeemed, producer=SERVICE, member_id=coupon.member_id, occurred_at=now)],
    )
    view = RedemptionView(
        coupon_id=coupon.coupon_id,
        campaign_id=coupon.campaign_id,
        member_id=coupon.member_id,
        code=coupon.code,
        order_id=body.order_id,
        redeemed_at=now,
        discount=DiscountView.of(discount),
    )
    return 200, view.model_dump(mode="json")


@router.post("/coupons/redeem", response_model=RedemptionView)
async def redeem_coupon(
    body: RedeemRequest,
    request: Request,
    session: Session,
    principal: Shopper,
    key: Annotated[str, Depends(idempotency_key)],
) -> JSONResponse:
    """Redeem once: the same Idempotency-Key replays the result; any other redemption of a
    redeemed coupon is 409 already_redeemed."""
    ensure_member_access(principal, body.member_id)
    async with session.begin():
        status, stored = await run_once(
            session,
            scope=REDEEM_SCOPE,
            key=f"{principal.subject}:{key}",
            request_body=body.model_dump(mode="json"),
            action=partial(_redeem, session, body, _now(request)),
        )
    return JSONResponse(stored, status_code=status)
