"""The balance endpoint condenses a member's lots in SQL; it must say what every lot says."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from points_svc import domain, repository
from sqlalchemy import text

pytestmark = pytest.mark.infra

NOW = datetime(2026, 11, 23, 13, 30, tzinfo=UTC)
SOON_DAYS = 30

_INSERT_LOT = text(
    "INSERT INTO lots (lot_id, member_id, source_kind, source_ref, original, remaining,"
    " available_at, expires_at, released)"
    " VALUES (:lot_id, :member_id, 'order', :ref, :original, :remaining, :available_at,"
    " :expires_at, :released)"
)

_SET_EARNED = text("UPDATE accounts SET earned = :earned WHERE member_id = :member_id")


def _lots(member_id: uuid.UUID, rng: random.Random) -> list[dict[str, object]]:
    """Pending and available, expired, spent, expiring today, on the horizon's own date
    on both sides of it, several on one day, and far beyond."""
    horizon = NOW + timedelta(days=SOON_DAYS)
    expiries = [
        NOW - timedelta(hours=1),
        NOW,
        NOW + timedelta(minutes=5),
        NOW + timedelta(hours=9),
        horizon - timedelta(minutes=1),
        horizon,
        horizon + timedelta(minutes=1),
        *(NOW + timedelta(days=rng.uniform(0, 60)) for _ in range(200)),
        *(NOW + timedelta(days=300, hours=rng.randint(0, 10)) for _ in range(50)),
    ]
    lots = []
    for index, expires_at in enumerate(expiries):
        original = rng.randint(1, 500)
        available_at = NOW + timedelta(days=rng.choice([-30, -1, 0, 1, 5]))
        lots.append(
            {
                "lot_id": uuid.uuid4(),
                "member_id": member_id,
                "ref": f"order-{index}",
                "original": original,
                "remaining": rng.choice([0, original, rng.randint(1, original)]),
                "available_at": min(available_at, expires_at),
                "expires_at": expires_at,
                "released": available_at <= NOW,
            }
        )
    return lots


async def test_condensed_balance_equals_the_balance_of_every_lot(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    member_id = uuid.uuid4()
    sessions = app.state.runtime.sessions
    lots = _lots(member_id, random.Random(3))
    async with sessions() as session, session.begin():
        await repository.create_account(session, member_id)
        for lot in lots:
            await session.execute(_INSERT_LOT, lot)
        # The running totals agree with the lots, as every posting keeps them.
        earned = sum(int(str(lot["remaining"])) for lot in lots)
        await session.execute(_SET_EARNED, {"member_id": member_id, "earned": earned})
    async with sessions() as session, session.begin():
        every_lot = await repository.read_account(session, member_id)
    async with app.state.runtime.read_pool.acquire() as connection:
        condensed = await repository.read_balance_account(
            connection, member_id, NOW, NOW + timedelta(days=SOON_DAYS)
        )
    assert every_lot is not None
    assert condensed is not None
    expected = domain.balance(every_lot.account, NOW, SOON_DAYS)
    assert domain.balance(condensed.account, NOW, SOON_DAYS) == expected
    assert expected.pending > 0
    assert expected.available > 0
    assert len(expected.expiring_soon) > 10
    assert len(condensed.account.lots) < len(every_lot.account.lots) / 4
    # The released lots beyond the horizon were told by the totals, not read.
    assert condensed.account.unloaded is not None
    assert condensed.account.unloaded.points > 0


async def test_an_account_without_lots_reads_as_zero(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    member_id = uuid.uuid4()
    async with app.state.runtime.sessions() as session, session.begin():
        await repository.create_account(session, member_id)
    async with app.state.runtime.read_pool.acquire() as connection:
        loaded = await repository.read_balance_account(
            connection, member_id, NOW, NOW + timedelta(days=SOON_DAYS)
        )
    assert loaded is not None
    assert domain.balance(loaded.account, NOW, SOON_DAYS).total == 0
