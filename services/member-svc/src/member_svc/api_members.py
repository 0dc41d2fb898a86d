"""Registering, reading, updating, listing and searching members."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from memberflow_events.ids import uuid7
from memberflow_platform.auth import OPS, ensure_member_access
from memberflow_platform.idempotency import idempotency_key, run_once
from memberflow_platform.problems import Problem, invalid, not_found
from sqlalchemy.ext.asyncio import AsyncSession

from member_svc import domain, repository, views
from member_svc.api_common import (
    AnyCaller,
    Outcome,
    Session,
    SystemCaller,
    check_birthday_at,
    checked,
    domain_errors,
    emit,
    load_member,
    now_of,
)
from member_svc.domain import Registration
from member_svc.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Position,
    decode_cursor,
    encode_cursor,
)
from member_svc.repository import (
    REGISTRATION_SCOPE,
    DuplicateValue,
    SearchFilter,
)
from member_svc.schemas import (
    MemberPage,
    MemberView,
    ReferrerView,
    RegisterRequest,
    UpdateRequest,
)
from member_svc.validation import normalize_email, normalize_external_id, normalize_phone

router = APIRouter(prefix="/v1", tags=["members"])


# ---------- registration ----------


def _registration(body: RegisterRequest) -> Registration:
    return Registration(
        external_id=body.external_id,
        email=body.email,
        phone=body.phone,
        first_name=body.first_name,
        last_name=body.last_name,
        birthday=body.birthday,
        time_zone=body.time_zone,
        attributes=body.attributes,
        consents=body.consents,
        referral_code=body.referral_code,
    )


async def _referrer(session: AsyncSession, code: str | None) -> UUID | None:
    if code is None:
        return None
    referrer = await repository.find_by_referral_code(session, code)
    if referrer is None:
        raise invalid("referral_code", "no member has this referral code")
    return referrer.id


async def _unused_referral_code(session: AsyncSession) -> str:
    while True:
        code = domain.generate_referral_code()
        if not await repository.referral_code_taken(session, code):
            return code


async def _register(
    request: Request, session: AsyncSession, registration: Registration, source: str, now: datetime
) -> Outcome:
    """Create the member, or find the one this external id already registered (a retry)."""
    if registration.external_id is not None:
        await repository.lock(session, f"external_id:{registration.external_id}")
        existing = await repository.find_by_external_id(session, registration.external_id)
        if existing is not None:
            if existing.registration_fingerprint != domain.registration_fingerprint(registration):
                raise Problem(
                    409,
                    "external_id is already registered with different data",
                    code="external-id-taken",
                    errors=[{"field": "external_id", "message": "registered with different data"}],
                )
            return 200, {"member_id": str(existing.id)}
    if registration.email is not None:
        await repository.lock(session, f"email:{registration.email}")
        if await repository.email_owner(session, registration.email) is not None:
            raise DuplicateValue("email")
    member = domain.register(
        registration,
        member_id=uuid7(),
        referral_code=await _unused_referral_code(session),
        referred_by=await _referrer(session, registration.referral_code),
        now=now,
    )
    await repository.insert_member(session, member)
    await repository.record_consent_changes(
        session, member.id, domain.initial_consents(registration, source, now)
    )
    payload = domain.registered_payload(member, registration.consents)
    await emit(request, session, payload, member.id, now)
    # Only the id is stored with the idempotency key: no personal data in that table.
    return 201, {"member_id": str(member.id)}


def _joined_at(requested: datetime | None, scopes: frozenset[str], now: datetime) -> datetime:
    """Registration time: now, or an imported member's original join date (ops only)."""
    if requested is None:
        return now
    if OPS not in scopes:
        raise Problem(
            403,
            "only ops may set joined_at",
            code="forbidden-field",
            errors=[{"field": "joined_at", "message": "requires the ops scope"}],
        )
    if requested > now:
        raise invalid("joined_at", "must not be in the future")
    return requested


@router.post(
    "/members",
    status_code=201,
    response_model=MemberView,
    responses={200: {"model": MemberView, "description": "already registered (same data)"}},
)
async def register_member(
    body: RegisterRequest,
    request: Request,
    session: Session,
    principal: SystemCaller,
    key: Annotated[str, Depends(idempotency_key)],
) -> JSONResponse:
    """Register a member (201), or return the one registered with this external id (200)."""
    now = now_of(request)
    check_birthday_at(body.birthday, body.time_zone, now)
    registration = _registration(body)
    source = f"registration:{domain.consent_source(principal.scopes, principal.subject)}"
    joined_at = _joined_at(body.joined_at, principal.scopes, now)
    action = partial(_register, request, session, registration, source, joined_at)
    with domain_errors():
        async with session.begin():
            status, stored = await run_once(
                session,
                scope=REGISTRATION_SCOPE,
                key=f"{principal.subject}:{key}",
                request_body=body.model_dump(mode="json"),
                action=action,
            )
            member = await load_member(session, UUID(stored["member_id"]))
            view = await views.load_member_view(session, member)
    return JSONResponse(view.model_dump(mode="json"), status_code=status)


# ---------- profile ----------


@router.get("/members/{member_id}")
async def read_member(member_id: UUID, session: Session, principal: AnyCaller) -> MemberView:
    """The member's profile and current consents (personal fields are null once erased)."""
    ensure_member_access(principal, member_id)
    async with session.begin():
        return await views.load_member_view(session, await load_member(session, member_id))


@router.patch("/members/{member_id}")
async def update_member(
    member_id: UUID, body: UpdateRequest, request: Request, session: Session, principal: AnyCaller
) -> MemberView:
    """Change profile fields; emits member.updated when a projectable field changed."""
    ensure_member_access(principal, member_id)
    now = now_of(request)
    changes = body.changes()
    with domain_errors():
        async with session.begin():
            before = await load_member(session, member_id, for_update=True)
            domain.ensure_active(before)
            check_birthday_at(body.birthday, body.time_zone or before.time_zone, now)
            email = changes.get("email")
            if email is not None and email != before.email:
                await repository.lock(session, f"email:{email}")
                if await repository.email_owner(session, email) is not None:
                    raise DuplicateValue("email")
            after = domain.apply_update(before, changes, now)
            if after != before:
                await repository.save_member(session, after)
            payload = domain.updated_payload(before, after)
            if payload is not None:
                await emit(request, session, payload, member_id, now)
            return await views.load_member_view(session, after)


@router.get("/members")
async def list_members(
    session: Session,
    _: SystemCaller,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    email: Annotated[str | None, Query(max_length=320)] = None,
    phone: Annotated[str | None, Query(max_length=40)] = None,
    external_id: Annotated[str | None, Query(max_length=100)] = None,
) -> MemberPage:
    """Members in registration order, a page at a time; filters match exactly."""
    after = checked("query.cursor", partial(decode_cursor, cursor)) if cursor else None
    search = SearchFilter(
        email=checked("query.email", partial(normalize_email, email)) if email else None,
        phone=checked("query.phone", partial(normalize_phone, phone)) if phone else None,
        external_id=(
            checked("query.external_id", partial(normalize_external_id, external_id))
            if external_id
            else None
        ),
    )
    async with session.begin():
        found = await repository.list_members(session, after=after, limit=limit + 1, search=search)
        page = found[:limit]
        items = await views.load_member_views(session, page)
    last = page[-1] if len(found) > limit else None
    next_cursor = encode_cursor(Position(last.created_at, last.id)) if last else None
    return MemberPage(items=items, next_cursor=next_cursor)


@router.get("/members/by-referral-code/{code}")
async def find_referrer(code: str, session: Session, _: SystemCaller) -> ReferrerView:
    """Who owns a referral code (to show "invited by ..." before registration)."""
    normalized = checked("path.code", partial(domain.normalize_referral_code, code))
    async with session.begin():
        referrer = await repository.find_by_referral_code(session, normalized)
    if referrer is None or referrer.referral_code is None:
        raise not_found("referral code")
    return ReferrerView(member_id=referrer.id, referral_code=referrer.referral_code)
