"""Expiry, release and reminder jobs, run with an injected `now` against the real stack."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI
from memberflow_events.payloads import PointsExpired, PointsExpiring, PointsReleased
from points_svc.domain import EarningRules
from points_svc.jobs import build_jobs, run_expiry, run_release, run_reminders

from tests.integration.points_svc.conftest import MakeApp
from tests.integration.points_svc.helpers import (
    get_balance,
    now,
    points_events,
    publish,
    purchase,
    scalar,
    shop,
    violations,
    wait_for_balance,
    wait_for_points_events,
)
from tests.support import eventually, running_service


def rules_of(app: FastAPI) -> EarningRules:
    rules: EarningRules = app.state.runtime.settings.earning_rules()
    return rules


async def test_expired_points_never_count_and_the_job_writes_them_off(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    old = purchase(member, 10_000, occurred_at=now() - timedelta(days=400))
    await publish(topic_prefix, "orders", [old, purchase(member, 5_000)])
    await eventually(lambda: _entries_are(app, 2), what="both purchases applied")

    # Before the job: the old lot is on the books but counts nowhere.
    balance = await get_balance(client, app, member)
    assert (balance["available"], balance["pending"], balance["total"]) == (50, 0, 50)
    refused = await client.post(
        f"/v1/members/{member}/redemptions",
        json={"points": 51},
        headers={**shop(app), "Idempotency-Key": "k"},
    )
    assert refused.status_code == 409
    assert refused.json()["available"] == 50
    assert await violations(app) == []

    sessions = app.state.runtime.sessions
    assert await run_expiry(sessions, rules_of(app), now()) == 1
    assert await run_expiry(sessions, rules_of(app), now()) == 0

    (expired,) = await wait_for_points_events(topic_prefix, "points.expired", 1)
    payload = expired.payload_as(PointsExpired)
    assert payload.points == 100
    assert payload.balance_after == 50
    assert expired.member_id == member
    assert (await get_balance(client, app, member))["available"] == 50
    history = (await client.get(f"/v1/members/{member}/history", headers=shop(app))).json()
    assert history["items"][0]["cause"] == {
        "type": "expiry",
        "lot_id": str(payload.lot_id),
        "order_id": old.payload.order_id,  # type: ignore[attr-defined]
        "refund_id": None,
        "redemption_id": None,
        "award_id": None,
        "campaign_id": None,
        "actor": None,
        "reason": None,
    }
    assert await violations(app) == []


async def _entries_are(app: FastAPI, count: int) -> bool:
    return bool(await scalar(app, "SELECT count(*) FROM ledger_entries") == count)


async def test_reminders_announce_each_lot_once(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    soon = purchase(member, 10_000, occurred_at=now() - timedelta(days=350))
    later = purchase(member, 7_000, occurred_at=now() - timedelta(days=100))
    await publish(topic_prefix, "orders", [soon, later])
    balance = await wait_for_balance(client, app, member, "two purchases", available=170)
    expires_on = (soon.occurred_at + timedelta(days=365)).date().isoformat()
    assert balance["expiring_soon"] == [{"expires_on": expires_on, "points": 100}]

    sessions = app.state.runtime.sessions
    assert await run_reminders(sessions, rules_of(app), now()) == 1
    assert await run_reminders(sessions, rules_of(app), now()) == 0
    assert await run_reminders(sessions, rules_of(app), now() + timedelta(hours=1)) == 0

    (reminder,) = await wait_for_points_events(topic_prefix, "points.expiring", 1)
    assert reminder.payload_as(PointsExpiring).points == 100
    assert reminder.payload_as(PointsExpiring).expires_on.isoformat() == expires_on
    # The later lot is announced once it comes within the reminder window.
    assert await run_reminders(sessions, rules_of(app), now() + timedelta(days=250)) == 1
    assert len(await points_events(topic_prefix, "points.expiring")) >= 1


async def test_pending_points_are_released_once(make_app: MakeApp, topic_prefix: str) -> None:
    app = await make_app(points_pending_days=14)
    member = uuid.uuid4()
    async with running_service(app) as client:
        await publish(
            topic_prefix,
            "orders",
            [
                purchase(member, 10_000, occurred_at=now() - timedelta(days=20)),
                purchase(member, 5_000, occurred_at=now() - timedelta(days=1)),
            ],
        )
        # The first lot's pending period ended: spendable before the job runs.
        balance = await wait_for_balance(
            client, app, member, "one pending lot", available=100, pending=50
        )
        assert balance["total"] == 150

        sessions = app.state.runtime.sessions
        assert await run_release(sessions, rules_of(app), now()) == 1
        assert await run_release(sessions, rules_of(app), now()) == 0
        assert await run_release(sessions, rules_of(app), now() + timedelta(days=14)) == 1

        released = await wait_for_points_events(topic_prefix, "points.released", 2)
        assert sorted(e.payload_as(PointsReleased).points for e in released) == [50, 100]
        assert await scalar(app, "SELECT bool_and(released) FROM lots") is True
        assert await violations(app) == []


async def test_periodic_wrappers_run_the_jobs_with_the_runtime_clock(
    app: FastAPI, client: httpx.AsyncClient, topic_prefix: str
) -> None:
    member = uuid.uuid4()
    await publish(
        topic_prefix, "orders", [purchase(member, 10_000, occurred_at=now() - timedelta(days=400))]
    )
    await eventually(lambda: _entries_are(app, 1), what="the old purchase applied")
    runtime = app.state.runtime
    periodic = {job.name: job for job in build_jobs(runtime.settings)}
    assert set(periodic) == {"points-release", "points-expiry", "points-reminders"}

    await periodic["points-expiry"].run(runtime)

    (expired,) = await wait_for_points_events(topic_prefix, "points.expired", 1)
    assert expired.payload_as(PointsExpired).points == 100
