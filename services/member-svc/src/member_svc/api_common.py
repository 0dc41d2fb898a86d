"""What every member-svc route uses: callers, clock, error mapping, loading, emitting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import partial
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Request
from memberflow_events.envelope import EventPayload, new_event
from memberflow_events.outbox import add_to_outbox
from memberflow_platform.app import get_runtime, get_session
from memberflow_platform.auth import MEMBER_SELF, OPS, STOREFRONT, Principal, require
from memberflow_platform.idempotency import idempotency_key, run_once
from memberflow_platform.problems import Problem, conflict, invalid, not_found
from sqlalchemy.ext.asyncio import AsyncSession

from member_svc import repository
from member_svc.domain import Member, MemberErasedError
from member_svc.repository import DuplicateValue
from member_svc.settings import MemberSettings
from member_svc.validation import InvalidValue, check_birthday, local_today

Session = Annotated[AsyncSession, Depends(get_session)]
# Any caller that may act for the member in the path (checked with ensure_member_access).
AnyCaller = Annotated[Principal, Depends(require(MEMBER_SELF, STOREFRONT, OPS))]
# Server-to-server and administration only: registering, listing, searching.
SystemCaller = Annotated[Principal, Depends(require(STOREFRONT, OPS))]
# Erasure is the member's own right or an administrator's act, not a storefront's.
Eraser = Annotated[Principal, Depends(require(MEMBER_SELF, OPS))]

Outcome = tuple[int, dict[str, Any]]


def settings_of(request: Request) -> MemberSettings:
    settings = get_runtime(request).settings
    assert isinstance(settings, MemberSettings)
    return settings


def now_of(request: Request) -> datetime:
    """The service clock (injectable in ServiceDefinition), never datetime.now()."""
    return get_runtime(request).clock()


@contextmanager
def domain_errors() -> Iterator[None]:
    """Domain and repository refusals as problem documents (the transaction rolls back)."""
    try:
        yield
    except DuplicateValue as error:
        raise Problem(
            409,
            f"{error.field} is already registered to another member",
            code=f"{error.field.replace('_', '-')}-taken",
            errors=[{"field": error.field, "message": "already registered to another member"}],
        ) from None
    except MemberErasedError as error:
        raise conflict(
            f"member {error.member_id} is erased; its data can no longer change",
            code="member-erased",
        ) from None


def checked(field: str, check: partial[Any]) -> Any:
    """Run a validation rule; an InvalidValue becomes a 422 naming `field`."""
    try:
        return check()
    except InvalidValue as error:
        raise invalid(field, str(error)) from None


def check_birthday_at(birthday: date | None, time_zone: str, now: datetime) -> None:
    if birthday is not None:
        checked("birthday", partial(check_birthday, birthday, local_today(now, time_zone)))


async def load_member(
    session: AsyncSession, member_id: UUID, *, for_update: bool = False
) -> Member:
    """The member or a 404; `for_update` serialises writers of one member."""
    member = await repository.get_member(session, member_id, for_update=for_update)
    if member is None:
        raise not_found(f"member {member_id}")
    return member


async def emit(
    request: Request, session: AsyncSession, payload: EventPayload, member_id: UUID, at: datetime
) -> None:
    """Queue an event about the member in the request's transaction (outbox)."""
    event = new_event(
        payload, producer=settings_of(request).service_name, member_id=member_id, occurred_at=at
    )
    await add_to_outbox(session, [event])


async def optional_idempotency_key(request: Request) -> str | None:
    """The Idempotency-Key header when the client sent one, validated like a required one."""
    if "idempotency-key" not in request.headers:
        return None
    return await idempotency_key(request)


async def once_per_key(
    session: AsyncSession,
    *,
    scope: str,
    principal: Principal,
    key: str | None,
    request_body: Any,
    action: Callable[[], Awaitable[Outcome]],
) -> Outcome:
    """Run `action` once per caller and key (a retry replays); always run it without a key."""
    if key is None:
        return await action()
    return await run_once(
        session,
        scope=scope,
        key=f"{principal.subject}:{key}",
        request_body=request_body,
        action=action,
    )
