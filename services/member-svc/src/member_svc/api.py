"""REST API of member-svc under /v1: parse, authorise, apply domain rules in one transaction.

Each request is one database transaction; the events it emits go to the outbox in that
transaction, so a request either changes state and emits, or does neither.
"""

from __future__ import annotations

from fastapi import APIRouter

from member_svc import api_engagement, api_gdpr, api_members

router = APIRouter()
router.include_router(api_members.router)
router.include_router(api_engagement.router)
router.include_router(api_gdpr.router)
