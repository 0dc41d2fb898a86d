"""The rest_reads baseline: a bare FastAPI endpoint, run by uvicorn like the services.

Same path shape and a JSON body of about the same size as the balance view, but no
authentication, no database, no middleware: what FastAPI + uvicorn cost on their own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import FastAPI

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/v1/members/{member_id}/balance")
async def balance(member_id: UUID) -> dict[str, Any]:
    return {
        "member_id": str(member_id),
        "available": 12_345,
        "pending": 0,
        "debt": 0,
        "total": 12_345,
        "expiring_soon": [{"expires_on": "2027-01-31", "points": 120}],
        "lifetime_earned": 20_000,
        "lifetime_redeemed": 7_655,
        "as_of": datetime.now(UTC).isoformat(),
    }
