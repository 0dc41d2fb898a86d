"""Waiting for analytics-svc to have applied events, and reading its database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from memberflow_events.envelope import Envelope
from sqlalchemy import text

from tests.support import eventually

PROJECTED = {
    "order.purchased",
    "order.refunded",
    "member.registered",
    "member.erased",
    "member.activity",
    "member.feedback",
    "points.earned",
    "points.released",
    "points.redeemed",
    "points.reversed",
    "points.expired",
    "points.adjusted",
    "tier.changed",
    "campaign.exposed",
}


async def scalar(app: FastAPI, sql: str, **params: Any) -> Any:
    async with app.state.runtime.engine.connect() as conn:
        return await conn.scalar(text(sql), params)


async def applied(app: FastAPI, events: Sequence[Envelope], within: float = 60) -> None:
    """Wait until the consumer has applied every distinct projected event."""
    wanted = len({e.event_id for e in events if e.type in PROJECTED})

    async def done() -> bool:
        n = await scalar(app, "SELECT count(*) FROM inbox WHERE consumer = 'analytics-svc'")
        return int(n) >= wanted

    await eventually(done, within=within, what=f"{wanted} events applied")


async def table_contents(app: FastAPI) -> dict[str, list[tuple[Any, ...]]]:
    """Every fact table, ordered, as plain tuples."""
    tables = [
        "fact_purchases",
        "fact_refunds",
        "fact_registrations",
        "fact_erasures",
        "fact_activities",
        "fact_feedback",
        "fact_points",
        "fact_tier_changes",
        "fact_exposures",
    ]
    contents: dict[str, list[tuple[Any, ...]]] = {}
    async with app.state.runtime.engine.connect() as conn:
        for table in tables:
            rows = await conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))
            contents[table] = [tuple(row) for row in rows]
    return contents
