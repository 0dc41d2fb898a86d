"""The balance endpoint condenses a member's lots in SQL; it must say what every lot says."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from points_svc import domain, repository
from sqlalchemy import text

from tests.support import shop

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
        [condensed] = await repository.read_balance_accounts(
            connection, [member_id], NOW, NOW + timedelta(days=SOON_DAYS)
        )
    assert every_lot is not None
    assert condensed is not None
    expected = domain.balance(every_lot.account, NOW, SOON_DAYS)
    assert domain.balance(condensed, NOW, SOON_DAYS) == expected
    assert expected.pending > 0
    assert expected.available > 0
    assert len(expected.expiring_soon) > 10
    assert len(condensed.lots) < len(every_lot.account.lots) / 4
    # The released lots beyond the horizon were told by the totals, not read.
    assert condensed.unloaded is not None
    assert condensed.unloaded.points > 0


async def test_one_statement_reads_many_members_in_the_order_asked(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    empty, unknown, rich = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    lots = _lots(rich, random.Random(4))
    async with app.state.runtime.sessions() as session, session.begin():
        await repository.create_account(session, empty)
        await repository.create_account(session, rich)
        for lot in lots:
            await session.execute(_INSERT_LOT, lot)
        earned = sum(int(str(lot["remaining"])) for lot in lots)
        await session.execute(_SET_EARNED, {"member_id": rich, "earned": earned})
    async with app.state.runtime.sessions() as session, session.begin():
        every_lot = await repository.read_account(session, rich)
    async with app.state.runtime.read_pool.acquire() as connection:
        read = await repository.read_balance_accounts(
            connection, [rich, unknown, empty], NOW, NOW + timedelta(days=SOON_DAYS)
        )
    assert every_lot is not None
    of_rich, of_unknown, of_empty = read
    assert of_unknown is None
    assert of_empty is not None
    assert domain.balance(of_empty, NOW, SOON_DAYS).total == 0
    assert of_rich is not None
    expected = domain.balance(every_lot.account, NOW, SOON_DAYS)
    assert expected.total > 0
    assert domain.balance(of_rich, NOW, SOON_DAYS) == expected


async def test_balances_read_at_once_each_answer_their_own_member(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Concurrent reads share statements (ReadBatcher); no answer may go to another member."""
    earned = {uuid.uuid4(): 10 * (index + 1) for index in range(12)}
    async with app.state.runtime.sessions() as session, session.begin():
        for member_id, points in earned.items():
            await repository.create_account(session, member_id)
            await session.execute(_SET_EARNED, {"member_id": member_id, "earned": points})
    unknown = uuid.uuid4()
    asked = [*earned, unknown] * 4
    random.Random(5).shuffle(asked)
    headers = shop(app)
    answers = await asyncio.gather(
        *(client.get(f"/v1/members/{member}/balance", headers=headers) for member in asked)
    )
    for member_id, answer in zip(asked, answers, strict=True):
        assert answer.status_code == 200
        body = answer.json()
        assert body["member_id"] == str(member_id)
        assert body["available"] == earned.get(member_id, 0)
