"""Reconciliation: sound books after every kind of posting; a corrupted lot is found."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from memberflow_events.payloads import OrderPurchased
from points_svc.jobs import run_expiry
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.integration.points_svc.helpers import (
    bonus,
    now,
    ops,
    publish,
    purchase,
    refund,
    scalar,
    shop,
    violations,
    wait_for_balance,
)


async def _command(app: FastAPI) -> tuple[int, str]:
    """`python -m points_svc.reconcile` against the test's database."""
    env = {**os.environ, "MF_DATABASE_URL": app.state.runtime.settings.database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "points_svc.reconcile",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode()


async def test_books_balance_after_activity_and_a_corrupted_lot_is_found(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member, other = uuid.uuid4(), uuid.uuid4()
    old = purchase(member, 8_000, occurred_at=now() - timedelta(days=400))
    bought = purchase(member, 20_000)
    order_id = bought.payload_as(OrderPurchased).order_id
    await publish(topic_prefix, "orders", [old, bought, purchase(other, 1_000)])
    await publish(topic_prefix, "campaigns", [bonus(member, 40)])
    await wait_for_balance(client, app, member, "credits", available=240)
    redeemed = await client.post(
        f"/v1/members/{member}/redemptions",
        json={"points": 230},
        headers={**shop(app), "Idempotency-Key": "r"},
    )
    assert redeemed.status_code == 201
    await publish(topic_prefix, "orders", [refund(member, order_id, 20_000)])
    await wait_for_balance(client, app, member, "refund into debt", debt=190)
    adjusted = await client.post(
        f"/v1/members/{member}/adjustments",
        json={"points": 200, "reason": "goodwill"},
        headers={**ops(app), "Idempotency-Key": "a"},
    )
    assert adjusted.status_code == 201, adjusted.text
    await run_expiry(app.state.runtime.sessions, app.state.runtime.settings.earning_rules(), now())

    assert await violations(app) == []
    report = await client.get("/v1/ops/reconciliation", headers=ops(app))
    assert report.status_code == 200
    assert report.json() == {"accounts_with_violations": 0, "violations": []}
    assert await _command(app) == (0, "")

    async with app.state.runtime.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE lots SET remaining = remaining + 7 WHERE lot_id ="
                " (SELECT lot_id FROM lots WHERE member_id = :m AND remaining > 0 LIMIT 1)"
            ),
            {"m": other},
        )
    report = await client.get("/v1/ops/reconciliation", headers=ops(app))
    body = report.json()
    assert body["accounts_with_violations"] == 1
    assert {v["member_id"] for v in body["violations"]} == {str(other)}
    assert {v["rule"] for v in body["violations"]} == {"balance", "lot"}
    code, output = await _command(app)
    assert code == 1
    assert str(other) in output


async def test_ledger_entries_cannot_be_changed_or_deleted(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    await publish(topic_prefix, "campaigns", [bonus(member, 10)])
    await wait_for_balance(client, app, member, "bonus", available=10)
    for statement in (
        "UPDATE ledger_entries SET points = 1000",
        "DELETE FROM ledger_entries",
        "TRUNCATE ledger_entries",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with app.state.runtime.engine.begin() as conn:
                await conn.execute(text(statement))
    assert await scalar(app, "SELECT sum(points) FROM ledger_entries") == 10
