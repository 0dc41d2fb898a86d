"""Idempotency-Key handling for POSTs that move value (DESIGN.md §5).

The same key with the same body replays the stored response; the same key with another
body is a 422. Concurrent requests with one key are serialised by an advisory lock, so
the action runs at most once. Only successful responses are stored: a request refused
(say 409, insufficient balance) may be retried with the same key once the cause is gone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from memberflow_platform.problems import Problem

Response = tuple[int, dict[str, Any]]


async def idempotency_key(request: Request) -> str:
    """FastAPI dependency: the request's Idempotency-Key header, required and sane."""
    key = request.headers.get("idempotency-key", "").strip()
    if not key:
        raise Problem(
            400,
            "header Idempotency-Key is required on this request",
            code="idempotency-key-missing",
            errors=[{"field": "Idempotency-Key", "message": "missing"}],
        )
    if len(key) > 200:
        raise Problem(
            400,
            "header Idempotency-Key is longer than 200 characters",
            code="idempotency-key-invalid",
            errors=[{"field": "Idempotency-Key", "message": "too long"}],
        )
    return key


def fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


async def run_once(
    session: AsyncSession,
    *,
    scope: str,
    key: str,
    request_body: Any,
    action: Callable[[], Awaitable[Response]],
) -> Response:
    """Run `action` once per (scope, key) inside the caller's transaction."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"{len(scope)}:{scope}:{key}"},
    )
    request_hash = fingerprint(request_body)
    stored = (
        await session.execute(
            text(
                "SELECT request_hash, status_code, body FROM idempotency_keys"
                " WHERE scope = :scope AND key = :key"
            ),
            {"scope": scope, "key": key},
        )
    ).first()
    if stored is not None:
        if stored.request_hash != request_hash:
            raise Problem(
                422,
                "this Idempotency-Key was used with a different request body",
                code="idempotency-key-reused",
                errors=[{"field": "Idempotency-Key", "message": "reused with another body"}],
            )
        return int(stored.status_code), dict(stored.body)
    status, body = await action()
    await session.execute(
        text(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, body)"
            " VALUES (:scope, :key, :hash, :status, CAST(:body AS jsonb))"
        ),
        {
            "scope": scope,
            "key": key,
            "hash": request_hash,
            "status": status,
            "body": json.dumps(body, default=str),
        },
    )
    return status, body
